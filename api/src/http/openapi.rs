//! The OpenAPI 3.1 description of the API, generated from the handlers' `#[utoipa::path]`
//! attributes and the request and response types (`/openapi.json`), and an interactive page
//! over it (`/docs`). Every `/v1` operation takes a bearer token and may answer with the error
//! shape on 400, 401, 403, 404, 409, 413, 415, 422, 429 and 500; those are added here once
//! rather than on each handler.

use axum::http::header::CONTENT_TYPE;
use axum::response::{Html, IntoResponse, Response};
use serde::Serialize;
use utoipa::openapi::path::Operation;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi as Spec, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::routes::{
    accounts, adjustments, admin, audit, daily, feed, finance, health, maintenance, orders, prices,
    quotes, verifications, wallets,
};

/// The error shape of every 4xx and 5xx answer.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable (`insufficient_funds`, `invalid_address`, …).
    pub code: String,
    pub message: String,
    /// The request field at fault, when there is one.
    pub field: Option<String>,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "trx-energy",
        description = "Rent TRON energy: accounts, deposits, orders, finance, audit and admin (docs/api.md).",
        version = "1"
    ),
    paths(
        accounts::open, accounts::balances, accounts::deposit_address,
        orders::list, orders::place, orders::get, orders::cancel, quotes::quote, prices::list,
        finance::balances, finance::orders, finance::deposits, finance::wallets, daily::report,
        feed::feed,
        audit::log, audit::head, audit::heads_page, audit::history, audit::state_at,
        verifications::start, verifications::latest,
        admin::tokens, admin::revoke,
        wallets::register, wallets::disable, wallets::enable, adjustments::adjust,
        prices::set, maintenance::rebuild, maintenance::get, maintenance::rotate_keys,
        health::live, health::ready,
    ),
    components(schemas(ErrorBody, ErrorDetail, feed::FeedEvent)),
    modifiers(&Conventions),
    security(("bearer" = []))
)]
pub struct ApiDoc;

/// The bearer scheme, and the error answers every authenticated operation may give.
struct Conventions;

const ERRORS: &[(&str, &str)] = &[
    ("400", "Malformed request (the field is named)"),
    ("401", "No token, or a bad, expired or revoked one"),
    (
        "403",
        "The token's role (or address) may not use this route",
    ),
    ("404", "Not found"),
    ("409", "Conflicts with the current state"),
    ("413", "Body too large"),
    ("415", "The body is not application/json"),
    ("422", "Well-formed but not acceptable (the field is named)"),
    ("429", "Rate limited (see Retry-After)"),
    ("500", "Internal error (an opaque id, also in the log)"),
];

impl Modify for Conventions {
    fn modify(&self, spec: &mut Spec) {
        let components = spec.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
        for (path, item) in spec.paths.paths.iter_mut() {
            if !path.starts_with("/v1/") {
                continue;
            }
            for op in [
                &mut item.get,
                &mut item.post,
                &mut item.put,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                add_errors(op);
            }
        }
    }
}

fn add_errors(op: &mut Operation) {
    for (status, description) in ERRORS {
        if op.responses.responses.contains_key(*status) {
            continue;
        }
        let response = ResponseBuilder::new()
            .description(*description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(RefOr::Ref(utoipa::openapi::Ref::from_schema_name(
                        "ErrorBody",
                    ))))
                    .build(),
            )
            .build();
        op.responses
            .responses
            .insert((*status).to_string(), RefOr::T(response));
    }
}

/// `GET /openapi.json`.
pub async fn spec() -> Response {
    match ApiDoc::openapi().to_json() {
        Ok(json) => ([(CONTENT_TYPE, "application/json")], json).into_response(),
        Err(e) => super::ApiError::internal(e).into_response(),
    }
}

/// `GET /docs`: Swagger UI over `/openapi.json`. The page loads Swagger UI's script and style
/// from a CDN in the reader's browser; the API itself serves only this page and the spec.
pub async fn docs() -> Html<&'static str> {
    Html(DOCS_PAGE)
}

const DOCS_PAGE: &str = r##"<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>trx-energy API</title>
  <link rel="stylesheet" href="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui.css">
</head>
<body>
  <div id="ui"></div>
  <noscript>This page needs JavaScript; the description itself is at <a href="/openapi.json">/openapi.json</a>.</noscript>
  <script src="https://cdn.jsdelivr.net/npm/swagger-ui-dist@5/swagger-ui-bundle.js"></script>
  <script>
    window.ui = SwaggerUIBundle({ url: "/openapi.json", dom_id: "#ui", persistAuthorization: true });
  </script>
</body>
</html>
"##;

#[cfg(test)]
mod tests {
    use super::*;

    /// Every schema an operation refers to is in the description (schemathesis resolves them).
    #[test]
    fn every_referenced_schema_is_described() {
        let spec = serde_json::to_value(ApiDoc::openapi()).unwrap();
        let schemas = spec["components"]["schemas"].as_object().unwrap();
        let text = spec.to_string();
        let mut missing = Vec::new();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = &part[..part.find('"').unwrap()];
            if !schemas.contains_key(name) {
                missing.push(name.to_string());
            }
        }
        assert!(missing.is_empty(), "not described: {missing:?}");
        for name in ["ExportLine", "SignedHead", "Head", "LogPage", "HeadsPage"] {
            assert!(schemas.contains_key(name), "{name}");
        }
    }
}
