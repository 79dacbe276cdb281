//! OTLP receivers: gRPC `TraceService/Export` and HTTP `POST /v1/traces`.

pub mod decode;
pub mod grpc;
pub mod http;
