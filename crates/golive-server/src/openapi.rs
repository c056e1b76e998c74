//! The OpenAPI 3.1 document at `/openapi.json`, built from one table of the
//! routes ([`ROUTES`]): method, path, handler, the role each needs, and the
//! Rust types of their bodies and queries, whose JSON Schemas schemars
//! derives. The router is built from the same table (`crate::router`), so
//! the document can neither miss a route nor name one that is not served,
//! and cannot drift from the types the handlers parse. The auth tests walk
//! the same table, route by route.

use axum::routing::{MethodFilter, MethodRouter, on};
use schemars::generate::SchemaSettings;
use schemars::{JsonSchema, SchemaGenerator};
use serde_json::{Map, Value, json};

use crate::auth::Need;
use crate::state::AppState;
use crate::{alertmanager, audit, events, flags, health, ofrep, runs, statuspage, web};

/// Makes the route's handler for its method.
pub type Handler = fn(MethodFilter) -> MethodRouter<AppState>;

type SchemaFn = fn(&mut SchemaGenerator) -> Value;

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Value {
    g.subschema_for::<T>().to_value()
}

/// One route.
pub struct Route {
    /// `GET`, `POST`, …
    pub method: &'static str,
    /// The path, with `{name}` parameters.
    pub path: &'static str,
    /// The least role it needs.
    pub need: Need,
    /// What it does.
    pub summary: &'static str,
    /// The JSON body's schema.
    pub body: Option<SchemaFn>,
    /// The query's schema (an object; each property becomes a parameter).
    pub query: Option<SchemaFn>,
    /// The 2xx answer's schema, where it has a type of its own.
    pub response: Option<SchemaFn>,
    /// The handler.
    pub handler: Handler,
}

impl Route {
    /// The router's filter for this route's method.
    pub fn filter(&self) -> Option<MethodFilter> {
        Some(match self.method {
            "GET" => MethodFilter::GET,
            "POST" => MethodFilter::POST,
            "PUT" => MethodFilter::PUT,
            "PATCH" => MethodFilter::PATCH,
            "DELETE" => MethodFilter::DELETE,
            _ => return None,
        })
    }
}

const fn route(
    method: &'static str,
    path: &'static str,
    need: Need,
    summary: &'static str,
    handler: Handler,
) -> Route {
    Route {
        method,
        path,
        need,
        summary,
        body: None,
        query: None,
        response: None,
        handler,
    }
}

/// Every route the server answers; the router is built from this table.
pub const ROUTES: &[Route] = &[
    route(
        "GET",
        "/health",
        Need::Public,
        "Liveness: the process answers",
        |m| on(m, health::health),
    ),
    route(
        "GET",
        "/ready",
        Need::Public,
        "Readiness: the store answers and its migrations are applied",
        |m| on(m, health::ready),
    ),
    route(
        "GET",
        "/metrics",
        Need::Public,
        "Prometheus metrics (OpenMetrics text); flag names only with a token, and a token always when the server sets `metrics_need_token`",
        |m| on(m, health::metrics),
    ),
    route("GET", "/openapi.json", Need::Public, "This document", |m| {
        on(m, openapi_json)
    }),
    route(
        "GET",
        "/status",
        Need::Public,
        "The public status page (HTML): overall state, the go-live under way, recent go-lives",
        |m| on(m, statuspage::page),
    ),
    Route {
        response: Some(schema::<statuspage::StatusDoc>),
        ..route(
            "GET",
            "/api/v2/status.json",
            Need::Public,
            "Atlassian Statuspage-compatible page status",
            |m| on(m, statuspage::status_json),
        )
    },
    Route {
        response: Some(schema::<statuspage::SummaryDoc>),
        ..route(
            "GET",
            "/api/v2/summary.json",
            Need::Public,
            "Atlassian Statuspage-compatible summary: status, components, incidents, maintenances",
            |m| on(m, statuspage::summary_json),
        )
    },
    route(
        "GET",
        "/ui",
        Need::Public,
        "The war room (HTML): sign in with a token; runs, a live run page, rollouts, flags, audit log, records",
        |m| on(m, web::page),
    ),
    route(
        "GET",
        "/ui/app.js",
        Need::Public,
        "The war room's script",
        |m| on(m, web::script),
    ),
    route(
        "GET",
        "/ui/app.css",
        Need::Public,
        "The war room's style sheet",
        |m| on(m, web::style),
    ),
    route(
        "GET",
        "/api/whoami",
        Need::Viewer,
        "The calling token's name and role, and what it may do",
        |m| on(m, web::whoami),
    ),
    Route {
        query: Some(schema::<runs::ListQuery>),
        ..route(
            "GET",
            "/api/runs",
            Need::Viewer,
            "Runs, newest first",
            |m| on(m, runs::list),
        )
    },
    Route {
        body: Some(schema::<runs::StartBody>),
        ..route(
            "POST",
            "/api/runs",
            Need::Operator,
            "Start a run of a plan in this server (a plan with `run` or command items needs an admin token unless the server allows them)",
            |m| on(m, runs::start),
        )
    },
    route(
        "GET",
        "/api/runs/{run}",
        Need::Viewer,
        "A run and its items",
        |m| on(m, runs::get),
    ),
    route(
        "GET",
        "/api/runs/{run}/outline",
        Need::Viewer,
        "The run's plan as the war room draws it: phases with their planned start (seconds from T-0), items with their owners",
        |m| on(m, web::outline),
    ),
    route(
        "GET",
        "/api/runs/{run}/status",
        Need::Viewer,
        "Where the run stands: its phase, each item, who it waits for",
        |m| on(m, runs::status),
    ),
    Route {
        query: Some(schema::<runs::EventsQuery>),
        ..route(
            "GET",
            "/api/runs/{run}/events",
            Need::Viewer,
            "A run's journal",
            |m| on(m, runs::events),
        )
    },
    Route {
        query: Some(schema::<runs::ReportQuery>),
        ..route(
            "GET",
            "/api/runs/{run}/report",
            Need::Viewer,
            "The filled-in go-live record (json, markdown, html, junit)",
            |m| on(m, runs::report),
        )
    },
    route(
        "POST",
        "/api/runs/{run}/resume",
        Need::Operator,
        "Resume a stopped run in this server",
        |m| on(m, runs::resume),
    ),
    Route {
        body: Some(schema::<runs::RollbackBody>),
        response: Some(schema::<runs::RollbackView>),
        ..route(
            "POST",
            "/api/runs/{run}/rollback",
            Need::Operator,
            "Ask for the run to be rolled back",
            |m| on(m, runs::rollback),
        )
    },
    Route {
        body: Some(schema::<runs::SteerBody>),
        ..route(
            "POST",
            "/api/runs/{run}/promote",
            Need::Operator,
            "Rollout: end the current pause and move to the next step",
            |m| on(m, runs::steer_rollout),
        )
    },
    Route {
        body: Some(schema::<runs::SteerBody>),
        ..route(
            "POST",
            "/api/runs/{run}/pause",
            Need::Operator,
            "Rollout: hold traffic where it is until resumed",
            |m| on(m, runs::steer_rollout),
        )
    },
    Route {
        body: Some(schema::<runs::SteerBody>),
        ..route(
            "POST",
            "/api/runs/{run}/resume-rollout",
            Need::Operator,
            "Rollout: let a paused rollout go on",
            |m| on(m, runs::steer_rollout),
        )
    },
    Route {
        body: Some(schema::<runs::SteerBody>),
        ..route(
            "POST",
            "/api/runs/{run}/abort",
            Need::Operator,
            "Rollout: roll back now (needs a reason)",
            |m| on(m, runs::steer_rollout),
        )
    },
    Route {
        body: Some(schema::<runs::SteerBody>),
        ..route(
            "POST",
            "/api/runs/{run}/incidents/{incident}/ack",
            Need::Operator,
            "Watch window: acknowledge an incident (its escalation stops)",
            |m| on(m, runs::ack_incident),
        )
    },
    Route {
        body: Some(schema::<alertmanager::Webhook>),
        query: Some(schema::<alertmanager::AlertsQuery>),
        ..route(
            "POST",
            "/api/alertmanager",
            Need::Operator,
            "Watch window: Alertmanager's webhook (version 4); its firing alerts open incidents in the runs in their watch window (or `?run=`), resolved ones resolve them",
            |m| on(m, alertmanager::receive),
        )
    },
    Route {
        body: Some(schema::<runs::ConfirmBody>),
        ..route(
            "POST",
            "/api/runs/{run}/items/{item}/confirm",
            Need::Operator,
            "Confirm (or skip) a task, as the token's name",
            |m| on(m, runs::confirm),
        )
    },
    Route {
        body: Some(schema::<runs::SignBody>),
        ..route(
            "POST",
            "/api/runs/{run}/items/{item}/approve",
            Need::Viewer,
            "Approve, with a token of the sign-off role",
            |m| on(m, runs::approve),
        )
    },
    Route {
        body: Some(schema::<runs::SignBody>),
        ..route(
            "POST",
            "/api/runs/{run}/items/{item}/reject",
            Need::Viewer,
            "Reject, with a token of the sign-off role",
            |m| on(m, runs::reject),
        )
    },
    Route {
        body: Some(schema::<runs::PlanBody>),
        ..route(
            "POST",
            "/api/plans/validate",
            Need::Viewer,
            "Validate a plan: every diagnostic",
            |m| on(m, runs::validate),
        )
    },
    Route {
        query: Some(schema::<audit::AuditQuery>),
        ..route(
            "GET",
            "/api/audit",
            Need::Operator,
            "The audit log, oldest first",
            |m| on(m, audit::list),
        )
    },
    Route {
        query: Some(schema::<events::EventsQuery>),
        ..route(
            "GET",
            "/api/events",
            Need::Viewer,
            "Live events (Server-Sent Events): flag changes, and a run's journal",
            |m| on(m, events::stream),
        )
    },
    Route {
        body: Some(schema::<audit::TokenBody>),
        ..route(
            "POST",
            "/api/tokens",
            Need::Admin,
            "Make a token (its text is shown once)",
            |m| on(m, audit::create),
        )
    },
    route(
        "GET",
        "/api/tokens",
        Need::Admin,
        "Tokens, without secrets",
        |m| on(m, audit::list_tokens),
    ),
    route(
        "DELETE",
        "/api/tokens/{id}",
        Need::Admin,
        "Revoke a token",
        |m| on(m, audit::revoke),
    ),
    Route {
        response: Some(schema::<Vec<flags::FlagView>>),
        ..route(
            "GET",
            "/api/admin/feature-flags",
            Need::Viewer,
            "Flags",
            |m| on(m, flags::list),
        )
    },
    Route {
        body: Some(flag_body),
        response: Some(schema::<flags::FlagView>),
        ..route(
            "POST",
            "/api/admin/feature-flags",
            Need::Operator,
            "Create a flag, or change the fields given of an existing one",
            |m| on(m, flags::post),
        )
    },
    Route {
        response: Some(schema::<flags::FlagView>),
        ..route(
            "GET",
            "/api/admin/feature-flags/{key}",
            Need::Viewer,
            "A flag",
            |m| on(m, flags::get),
        )
    },
    Route {
        body: Some(flag_body),
        response: Some(schema::<flags::FlagView>),
        ..route(
            "PUT",
            "/api/admin/feature-flags/{key}",
            Need::Operator,
            "Replace a flag",
            |m| on(m, flags::put),
        )
    },
    Route {
        body: Some(flag_body),
        response: Some(schema::<flags::FlagView>),
        ..route(
            "PATCH",
            "/api/admin/feature-flags/{key}",
            Need::Operator,
            "Change the fields given",
            |m| on(m, flags::patch),
        )
    },
    Route {
        query: Some(schema::<flags::ReasonQuery>),
        ..route(
            "DELETE",
            "/api/admin/feature-flags/{key}",
            Need::Admin,
            "Delete a flag",
            |m| on(m, flags::delete),
        )
    },
    Route {
        body: Some(ofrep_body),
        ..route(
            "POST",
            "/ofrep/v1/evaluate/flags/{key}",
            Need::Viewer,
            "OFREP: evaluate one flag",
            |m| on(m, ofrep::evaluate_one),
        )
    },
    Route {
        body: Some(ofrep_body),
        ..route(
            "POST",
            "/ofrep/v1/evaluate/flags",
            Need::Viewer,
            "OFREP: evaluate every flag (ETag / If-None-Match)",
            |m| on(m, ofrep::evaluate_bulk),
        )
    },
    route(
        "GET",
        "/ofrep/v1/configuration",
        Need::Viewer,
        "OFREP: what this server supports",
        |m| on(m, ofrep::configuration),
    ),
];

async fn openapi_json() -> axum::Json<Value> {
    axum::Json(document())
}

/// The flag JSON (see the golive-flags crate), plus an optional `reason`.
fn flag_body(_: &mut SchemaGenerator) -> Value {
    json!({
        "type": "object",
        "required": ["enabled"],
        "properties": {
            "flag": {"type": "string", "description": "The key (alias `key`)"},
            "enabled": {"type": "boolean"},
            "description": {"type": ["string", "null"]},
            "percentage": {"type": ["number", "null"], "minimum": 0, "maximum": 100},
            "stickiness": {"type": ["string", "null"]},
            "group_id": {"type": ["string", "null"]},
            "variants": {"type": ["array", "null"], "items": {"type": "object", "required": ["name", "value", "weight"],
                "properties": {"name": {"type": "string"}, "value": {}, "weight": {"type": "integer", "minimum": 0}}}},
            "default_variant": {"type": ["string", "null"]},
            "targeting": {"type": ["object", "null"]},
            "reason": {"type": ["string", "null"], "description": "Why, for the audit log"}
        }
    })
}

fn ofrep_body(_: &mut SchemaGenerator) -> Value {
    json!({"type": "object", "properties": {"context": {"type": "object",
        "properties": {"targetingKey": {"type": "string"}}, "additionalProperties": true}}})
}

/// The document.
pub fn document() -> Value {
    let mut settings = SchemaSettings::draft2020_12();
    settings.definitions_path = "/components/schemas".into();
    settings.meta_schema = None;
    let mut g = settings.into_generator();
    let mut paths = Map::new();
    for r in ROUTES {
        let mut op = Map::new();
        op.insert("summary".into(), json!(r.summary));
        op.insert(
            "operationId".into(),
            json!(format!("{} {}", r.method, r.path)),
        );
        op.insert("x-golive-role".into(), json!(r.need.as_str()));
        if r.need != Need::Public {
            op.insert("security".into(), json!([{"bearer": []}, {"apiKey": []}]));
        } else {
            op.insert("security".into(), json!([]));
        }
        let mut params: Vec<Value> = r
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
            .map(|name| json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}))
            .collect();
        if let Some(q) = r.query {
            let mut s = q(&mut g);
            resolve(&mut s, &g);
            if let Some(props) = s.get("properties").and_then(Value::as_object) {
                for (name, schema) in props {
                    params.push(
                        json!({"name": name, "in": "query", "required": false, "schema": schema,
                        "description": schema.get("description").cloned().unwrap_or(Value::Null)}),
                    );
                }
            }
        }
        if !params.is_empty() {
            op.insert("parameters".into(), Value::Array(params));
        }
        if let Some(b) = r.body {
            op.insert(
                "requestBody".into(),
                json!({"required": true, "content": {"application/json": {"schema": b(&mut g)}}}),
            );
        }
        let ok = match r.response {
            Some(s) => {
                json!({"description": "OK", "content": {"application/json": {"schema": s(&mut g)}}})
            }
            None => json!({"description": "OK"}),
        };
        let mut responses = Map::new();
        responses.insert("2XX".into(), ok);
        responses.insert(
            "default".into(),
            json!({"description": "A refusal or failure, in the one error shape",
                   "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
        if r.need != Need::Public {
            responses.insert(
                "401".into(),
                json!({"description": "No token, or an unknown, expired or revoked one"}),
            );
            responses.insert(
                "403".into(),
                json!({"description": "The token's role is not enough"}),
            );
            responses.insert(
                "429".into(),
                json!({"description": "Too many refused tokens from this address"}),
            );
        }
        op.insert("responses".into(), Value::Object(responses));
        let entry = paths
            .entry(r.path.to_string())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Some(m) = entry.as_object_mut() {
            m.insert(r.method.to_lowercase(), Value::Object(op));
        }
    }
    let mut schemas = g.take_definitions(true);
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"], "properties": {
                "code": {"type": "string", "description": "Stable and machine-readable, e.g. `forbidden`, `invalid`, `not_found`, `method_not_allowed`, `too_large`, `unsupported_media_type`, `rate_limited`, `internal`"},
                "message": {"type": "string", "description": "Short, for a person; an internal error's cause is only in the server log, under the response's x-request-id"}}}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {"title": "golive", "version": env!("CARGO_PKG_VERSION"),
                 "description": "The war-room API of golive: runs, people's answers, feature flags (admin and OFREP), tokens, audit log, live events."},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
            }
        }
    })
}

/// Inlines a top-level `$ref` (query parameter objects must be expanded).
fn resolve(schema: &mut Value, g: &SchemaGenerator) {
    let target = schema
        .get("$ref")
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .map(str::to_string);
    if let Some(name) = target {
        if let Some(def) = g.definitions().get(&name) {
            *schema = def.clone();
        }
    }
}
