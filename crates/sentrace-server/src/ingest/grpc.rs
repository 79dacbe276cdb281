//! OTLP/gRPC `TraceService/Export`.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use sentrace_access::AuthError;
use sentrace_core::StageError;
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::app::AppState;
use crate::metrics::Protocol;

/// The gRPC receiver.
#[derive(Clone)]
pub struct GrpcIngest {
    state: Arc<AppState>,
}

/// Maps a refused credential to a gRPC status that reveals nothing more.
pub fn auth_status(e: &AuthError) -> Status {
    match e {
        AuthError::Forbidden { .. } => Status::permission_denied("permission denied"),
        _ => Status::unauthenticated("unauthenticated"),
    }
}

/// Maps a stage refusal to its gRPC status.
pub fn stage_status(e: StageError) -> Status {
    match e {
        StageError::Invalid(m) => Status::invalid_argument(m),
        StageError::Forbidden(m) => Status::permission_denied(m),
        StageError::Exhausted {
            message,
            retry_after,
        } => {
            // OTLP: RESOURCE_EXHAUSTED is retryable only with RetryInfo; the plain
            // `grpc-retry-pushback-ms` and `retry-after` metadata tell clients how long to wait.
            let mut s = Status::resource_exhausted(message);
            let ms = retry_after.as_millis().to_string();
            if let Ok(v) = ms.parse() {
                s.metadata_mut().insert("grpc-retry-pushback-ms", v);
            }
            if let Ok(v) = retry_after.as_secs().max(1).to_string().parse() {
                s.metadata_mut().insert("retry-after", v);
            }
            s
        }
        StageError::Internal(_) => Status::unavailable("internal error; retry later"),
    }
}

#[tonic::async_trait]
impl TraceService for GrpcIngest {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let st = &self.state;
        st.metrics.ingest_request(Protocol::Grpc);
        let header = request
            .metadata()
            .get("authorization")
            .and_then(|v| v.to_str().ok());
        let creds = crate::auth::Credentials {
            authorization: header,
            connection: request.extensions().get::<crate::auth::Connection>(),
        };
        let identity = match super::authorize(st, creds).await {
            Ok(id) => id,
            Err(e) => {
                st.metrics.auth_failure();
                tracing::debug!(reason = %e, "gRPC export refused");
                let source = creds.remote().map(|a| a.ip().to_string());
                st.query
                    .audit_unauthenticated(
                        &crate::api::credential_hint(&creds),
                        source,
                        "gRPC TraceService/Export",
                        &e.to_string(),
                    )
                    .await;
                return Err(auth_status(&e));
            }
        };
        let md = request.metadata();
        let source =
            crate::sources::wire::parse(|h| md.get(h).map(|v| v.to_str().ok())).map_err(|e| {
                let e = crate::sources::SourceError::from(e);
                st.sources.refused(&e);
                st.metrics.ingest_invalid();
                Status::invalid_argument(e.to_string())
            })?;
        let req = request.into_inner();
        let outcome = st
            .pipeline
            .ingest(identity, source, req.resource_spans)
            .await
            .map_err(stage_status)?;
        let receipt = outcome.receipt;
        let partial_success = (outcome.rejected > 0 || !outcome.message.is_empty()).then(|| {
            ExportTracePartialSuccess {
                rejected_spans: i64::try_from(outcome.rejected).unwrap_or(i64::MAX),
                error_message: outcome.message,
            }
        });
        let mut resp = Response::new(ExportTraceServiceResponse { partial_success });
        if let Some(r) = receipt {
            for (key, value) in crate::seal::receipt_headers(&r) {
                if let Ok(v) = value.parse() {
                    resp.metadata_mut().insert(key, v);
                }
            }
        }
        Ok(resp)
    }
}

/// The gRPC service as an axum router, with gzip and the decompressed-size limit.
pub fn router(state: Arc<AppState>) -> axum::Router {
    let limit = state.limits.max_request_bytes;
    let svc = TraceServiceServer::new(GrpcIngest { state })
        .accept_compressed(CompressionEncoding::Gzip)
        .send_compressed(CompressionEncoding::Gzip)
        .max_decoding_message_size(limit);
    tonic::service::Routes::new(svc).into_axum_router()
}
