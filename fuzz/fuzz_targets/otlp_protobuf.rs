//! OTLP/protobuf as the receivers see it: decode, validate against the limits, and for
//! accepted spans, the canonical encoding must round-trip exactly.
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use sentrace_core::proto::collector::trace::v1::ExportTraceServiceRequest;
use sentrace_core::{Limits, canonical};

fuzz_target!(|data: &[u8]| {
    let Ok(req) = ExportTraceServiceRequest::decode(data) else {
        return;
    };
    if Limits::default().validate(&req.resource_spans, 1_700_000_000_000_000_000).is_err() {
        return;
    }
    for rs in &req.resource_spans {
        for ss in &rs.scope_spans {
            for span in &ss.spans {
                let bytes = canonical::encode(rs, ss, span);
                let back = canonical::decode(&bytes).expect("canonical bytes decode");
                assert_eq!(back.scope_spans[0].spans[0], *span);
                assert_eq!(back.encode_to_vec(), bytes[1..]);
            }
        }
    }
});
