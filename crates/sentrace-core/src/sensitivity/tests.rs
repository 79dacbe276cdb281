use proptest::prelude::*;

use super::*;

fn entry(place: Place<'static>, class: AttributeClass) -> MinimizedEntry<'static> {
    MinimizedEntry { place, class }
}

#[test]
fn every_place_round_trips() {
    let entries = vec![
        entry(Place::Name, AttributeClass::Pii),
        entry(Place::Status, AttributeClass::Secret),
        entry(Place::Anywhere, AttributeClass::Financial),
        entry(Place::Resource("host.owner".into()), AttributeClass::Pii),
        entry(Place::Scope("maintainer".into()), AttributeClass::Pii),
        entry(Place::Span("a;b=c%d".into()), AttributeClass::Secret),
        entry(
            Place::Event {
                index: 3,
                key: "exception.message".into(),
            },
            AttributeClass::Financial,
        ),
        entry(Place::EventName(4_294_967_295), AttributeClass::Pii),
        entry(
            Place::Link {
                index: 0,
                key: "".into(),
            },
            AttributeClass::Pii,
        ),
    ];
    let text = format_minimized(&entries);
    assert_eq!(
        text,
        "name=pii;status=secret;*=financial;resource:host.owner=pii;scope:maintainer=pii;\
         span:a%3Bb%3Dc%25d=secret;event[3]:exception.message=financial;\
         event[4294967295].name=pii;link[0]:=pii"
    );
    assert_eq!(parse_minimized(&text).unwrap(), entries);
}

#[test]
fn the_empty_list_is_empty() {
    assert_eq!(parse_minimized("").unwrap(), vec![]);
}

#[test]
fn malformed_lists_are_refused_with_the_entry() {
    for (bad, reason) in [
        ("span:x", "no '='"),
        ("span:x=PII", "unknown class"),
        ("spam:x=pii", "unknown place"),
        ("event[]:x=pii", "1 to 10 digits"),
        ("event[99999999999]:x=pii", "1 to 10 digits"),
        ("event[4294967296]:x=pii", "above 2^32-1"),
        ("event[1]x=pii", "expected ':'"),
        ("link[1].name=pii", "expected ':'"),
        ("event[1:x=pii", "no ']'"),
        ("span:a%3=pii", "truncated"),
        ("span:a%41=pii", "unknown %-escape"),
        ("name=pii;", "no '='"),
    ] {
        let err = parse_minimized(bad).unwrap_err();
        assert!(err.to_string().contains(reason), "{bad}: {err}");
    }
    let long = "name=pii;".repeat(MAX_MINIMIZED_PARSE_BYTES / 9 + 1);
    assert!(matches!(
        parse_minimized(&long),
        Err(MinimizedListError::TooLong { .. })
    ));
    let many = vec!["name=pii"; MAX_MINIMIZED_PARSE_ENTRIES + 1].join(";");
    assert!(matches!(
        parse_minimized(&many),
        Err(MinimizedListError::TooManyEntries { .. })
    ));
}

#[test]
fn classes_and_sets() {
    for c in AttributeClass::ALL {
        assert_eq!(AttributeClass::parse(c.as_str()), Some(c));
        assert_eq!(c.mask_text(), format!("<redacted:{c}>"));
        assert!(ClassSet::all().contains(c));
        assert!(!ClassSet::EMPTY.contains(c));
    }
    let s = ClassSet::EMPTY.with(AttributeClass::Secret);
    assert_eq!(s.iter().collect::<Vec<_>>(), vec![AttributeClass::Secret]);
    assert!(AttributeClass::parse("Pii").is_none());
}

fn any_class() -> impl Strategy<Value = AttributeClass> {
    prop::sample::select(AttributeClass::ALL.to_vec())
}

fn any_place() -> impl Strategy<Value = Place<'static>> {
    let key = "\\PC{0,12}".prop_map(Cow::Owned);
    prop_oneof![
        Just(Place::Name),
        Just(Place::Status),
        Just(Place::Anywhere),
        key.clone().prop_map(Place::Resource),
        key.clone().prop_map(Place::Scope),
        key.clone().prop_map(Place::Span),
        (any::<u32>(), key.clone()).prop_map(|(index, key)| Place::Event { index, key }),
        any::<u32>().prop_map(Place::EventName),
        (any::<u32>(), key).prop_map(|(index, key)| Place::Link { index, key }),
    ]
}

proptest! {
    #[test]
    fn lists_round_trip(entries in prop::collection::vec(
        (any_place(), any_class()).prop_map(|(place, class)| MinimizedEntry { place, class }),
        0..20,
    )) {
        let text = format_minimized(&entries);
        prop_assert_eq!(parse_minimized(&text).unwrap(), entries);
    }

    #[test]
    fn parsing_never_panics(s in "\\PC{0,200}") {
        let _ = parse_minimized(&s);
    }
}
