//! CRS regression rules whose test payloads are not attacks of their family by any
//! reasonable reading: fragments that only paranoia-level-2 to 4 rules flag (a lone
//! operator, a keyword followed by `(`, a run of punctuation, one common word). The
//! evaluation reports a second figure without them; the primary figure keeps every case.
//! Whole rules are listed (hit or missed alike), never single cases picked by outcome.

/// `(CRS rule id, why its test payloads are not attacks)`.
pub const NOT_ATTACKS: &[(u64, &str)] = &[
    (
        942120,
        "an SQL operator alone (`<>`, `XOR`, `!=`, `IS NULL`, `in (0,1)`)",
    ),
    (
        942410,
        "a word that is also an SQL function name followed by `(` (`time (`, `LEFT(`, `default(`)",
    ),
    (
        942490,
        "a quote or backtick next to digits (`\"2562*23`, `':60`)",
    ),
    (
        942420,
        "a count of special characters in a cookie (`~~~~~~~~~`, `!@#$%^&*`)",
    ),
    (942421, "a count of special characters in a cookie (`!@#`)"),
    (
        942430,
        "a count of special characters in a parameter (`(((((())))))`)",
    ),
    (
        942431,
        "a count of special characters in a parameter (`-------------------`)",
    ),
    (
        942432,
        "a count of special characters in a parameter (`!@`, `;;dd foo bar`)",
    ),
    (942460, "repeated non-word characters (`foo....`)"),
    (942510, "one word in backticks (`` `bla` ``)"),
    (942511, "one word in quotes (`'bla'`)"),
    (942140, "a database name alone (`tempdb`, `Northwind`)"),
    (
        942220,
        "a number at an integer or float limit (`4294967296`), not SQL",
    ),
    (932270, "a tilde alone (`~`, `~-1`)"),
    (932271, "a tilde and a digit (`~0`)"),
    (932330, "shell history expansion alone (`!-1!-2`)"),
    (932331, "shell history expansion alone (`!!`, `!1`)"),
    (932350, "one word that is also a Unix command (`id`)"),
    (932290, "quotes in prose (`O'keefe's`, `Size: 8\"x11\"`)"),
    (941181, "the end of an HTML comment alone (`-->`)"),
    (
        932180,
        "an upload of a configuration file name (`settings.php`, `.boto`): not a command",
    ),
];
