//! The admin API's OpenAPI 3.1 document, generated from the handlers' `#[utoipa::path]`
//! attributes and the types' `ToSchema` derives; never written by hand. Served at
//! `/api/v1/openapi.json` without a token (it describes the API, it holds no data).

use std::sync::LazyLock;

use axum::Json;
use serde::Serialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

use super::{books, connections, events, ledger};

/// An RFC 9457 problem, the body of every error answer (`application/problem+json`).
#[derive(Serialize, ToSchema)]
pub struct Problem {
    /// `urn:shopbridge:problem:{slug}`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Short summary of the problem type.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What is wrong (client errors only).
    pub detail: Option<String>,
    /// The invalid field, on 422.
    pub field: Option<String>,
}

/// The document's definition.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "shopbridge admin API",
        version = "1",
        description = "Operate shopbridge: connections, books, posting rules, events, replay, vouchers and reports. Every path needs `Authorization: Bearer <token>` (`shopbridge tokens create`). Every error is `application/problem+json`, a path that does not exist (404) and a method a path does not take (405, with `Allow`) included."
    ),
    paths(
        books::companies, books::accounts, books::departments, books::add_department,
        books::locations, books::add_location, books::list_rules, books::add_rule,
        books::get_rule, books::put_rule, books::delete_rule, books::test_rules,
        connections::list, connections::create, connections::show, connections::update,
        connections::disable, connections::enable, connections::rotate_secret,
        events::list, events::show, events::replay_events, events::list_dead,
        events::replay_dead, events::purge_dead,
        ledger::list, ledger::show, ledger::trial_balance, ledger::account_ledger,
    ),
    components(schemas(Problem)),
    modifiers(&Guarded),
)]
pub struct AdminApi;

/// Adds the bearer scheme, requires it everywhere, and documents the problem answers every
/// operation can give.
struct Guarded;

/// Problem answers any admin operation may give.
const PROBLEMS: [(&str, &str); 7] = [
    ("400", "A parameter or the body cannot be read"),
    ("401", "No valid bearer token"),
    ("404", "Nothing has this id"),
    ("409", "It exists already"),
    ("422", "A field is not acceptable; `field` names it"),
    ("500", "Internal error (logged; nothing is revealed)"),
    (
        "503",
        "PostgreSQL or RabbitMQ is unavailable; retry after the `Retry-After` header's seconds",
    ),
];

/// The problem answer of operations that take a body.
const TOO_LARGE: (&str, &str) = ("413", "The body is larger than 1 MiB");
const _: () = assert!(
    super::BODY_LIMIT == 1024 * 1024,
    "TOO_LARGE states the limit"
);

impl Modify for Guarded {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        openapi.security = Some(vec![SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
        for item in openapi.paths.paths.values_mut() {
            let ops = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for op in ops.into_iter().flatten() {
                let takes_body = op.request_body.is_some();
                let problems = PROBLEMS.iter().chain(takes_body.then_some(&TOO_LARGE));
                for &(code, description) in problems {
                    let problem = ResponseBuilder::new()
                        .description(description)
                        .content(
                            "application/problem+json",
                            ContentBuilder::new()
                                .schema(Some(Ref::from_schema_name("Problem")))
                                .build(),
                        )
                        .build();
                    op.responses
                        .responses
                        .entry(code.to_owned())
                        .or_insert(RefOr::T(problem));
                }
            }
        }
    }
}

static DOCUMENT: LazyLock<serde_json::Value> =
    LazyLock::new(|| serde_json::to_value(AdminApi::openapi()).unwrap_or_default());

/// `GET /api/v1/openapi.json`.
pub async fn document() -> Json<serde_json::Value> {
    Json(DOCUMENT.clone())
}
