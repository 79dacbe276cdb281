//! OTLP/JSON as the HTTP receiver sees it: decode and validate never panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentrace_core::Limits;
use sentrace_core::proto::collector::trace::v1::ExportTraceServiceRequest;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = serde_json::from_slice::<ExportTraceServiceRequest>(data) {
        let _ = Limits::default().validate(&req.resource_spans, 1_700_000_000_000_000_000);
    }
});
