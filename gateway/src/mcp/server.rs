//! The MCP request handler: capabilities, protocol versions, and the dispatch of `tools/*`,
//! `resources/*`, `prompts/*` and `completion/complete` to [`super::calls`], [`super::chat`],
//! [`super::resources`] and [`super::prompts`].
//!
//! The handler holds no per-client state: every request carries its tenant key and (from
//! 2026-07-28) its protocol metadata, and everything a tool reads or writes is in the ledger's
//! database, so any replica answers any request.

use std::borrow::Cow;
use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use http::request::Parts;
use opentelemetry::KeyValue;
use rmcp::model::{
    CacheScope, CallToolRequestParams, CallToolResponse, CallToolResult, CompleteRequestParams,
    CompleteResult, CompletionInfo, ContentBlock, GetPromptRequestParams, GetPromptResponse, Implementation,
    ListPromptsResult, ListResourcesResult, ListToolsResult, PaginatedRequestParams, ProtocolVersion,
    ReadResourceRequestParams, ReadResourceResponse, ReadResourceResult, Reference, ServerCapabilities,
    ServerConfig, Tool,
};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};

use super::calls::Call;
use super::outcome::{ToolError, structured};
use super::tools::{Catalog, ToolName};
use crate::auth::Authenticated;
use crate::exchange::{rate_checks, rate_limited};
use crate::ratelimit::{Decision, Dimension};
use crate::state::AppState;

/// Exactly the revisions this server is tested against (conformance suite and the Python SDK).
pub const PROTOCOL_VERSIONS: &[ProtocolVersion] =
    &[ProtocolVersion::V_2025_11_25, ProtocolVersion::V_2026_07_28];
/// How long clients may cache `tools/list`: the tools change only with a new gateway version.
const TOOLS_TTL_MS: u64 = 60_000;

const INSTRUCTIONS: &str = "Switchboard personas: named assistants that remember the people they talk with. \
Call `list_personas` (or read the `persona://<name>` resources) to see who is available, `chat` to talk \
to one, and `remember`/`recall`/`forget` to manage what a persona knows about a subject (an end-user id). \
Each persona is also a prompt: its system message with what it remembers about a subject, for your own model.";

#[derive(Clone)]
pub struct McpServer {
    state: AppState,
    catalog: Arc<Catalog>,
}

impl McpServer {
    pub fn new(state: AppState) -> McpServer {
        McpServer { state, catalog: Arc::new(Catalog::new()) }
    }

    /// `chat`: the exchange counts the request in the metrics once it has begun; the tool counts
    /// the failures before that.
    async fn chat(
        &self,
        call: &Call<'_>,
        arguments: Value,
        headers: &HeaderMap,
    ) -> Result<CallToolResult, ToolError> {
        let tool = ToolName::Chat;
        let args = self.catalog.arguments(tool, arguments).inspect_err(|e| call.count(tool, e.status()))?;
        call.chat(args, headers).await.map(chat_result)
    }
}

/// Runs `work` (a tool other than `chat`) and counts it in the request metrics.
async fn counted(
    call: &Call<'_>,
    tool: ToolName,
    work: impl Future<Output = Result<Value, ToolError>>,
) -> Result<CallToolResult, ToolError> {
    let outcome = work.await;
    call.count(tool, outcome.as_ref().map_or_else(ToolError::status, |_| 200));
    outcome.map(structured)
}

impl ServerHandler for McpServer {
    fn get_info(&self) -> ServerConfig {
        let capabilities = ServerCapabilities::builder()
            .enable_tools()
            .enable_resources()
            .enable_prompts()
            .enable_completions()
            .build();
        let server = Implementation::new("switchboard-gateway", env!("CARGO_PKG_VERSION"))
            .with_title("Switchboard personas");
        ServerConfig::new(capabilities).with_server_info(server).with_instructions(INSTRUCTIONS)
    }

    fn supported_protocol_versions(&self) -> Cow<'static, [ProtocolVersion]> {
        Cow::Borrowed(PROTOCOL_VERSIONS)
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        Ok(ListToolsResult::with_all_items(self.catalog.tools())
            .with_ttl_ms(TOOLS_TTL_MS)
            .with_cache_scope(CacheScope::Public))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.catalog.tool(name)
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let Some(tool) = ToolName::parse(&request.name) else {
            let message = format!("unknown tool `{}`; `tools/list` has the tools", request.name);
            return Err(ErrorData::invalid_params(message, Some(json!({"tool": request.name}))));
        };
        let (auth, parts) = authenticated(&context)?;
        let call = Call { state: &self.state, auth: &auth, started: Instant::now() };
        let span = self.state.tracer.open(&parts.headers, format!("{TOOLS_CALL} {}", tool.as_str()));
        let inner_headers = span.as_ref().map(|span| span.inner_headers(&parts.headers));
        let headers = inner_headers.as_ref().unwrap_or(&parts.headers);
        let arguments = Value::Object(request.arguments.unwrap_or_default());
        let catalog = &self.catalog;
        // Arguments first (an invalid call costs nothing), then one request against the caller's
        // rate limits, then the tool.
        let result = match tool {
            ToolName::Chat => self.chat(&call, arguments, headers).await,
            ToolName::ListPersonas => {
                counted(&call, tool, async {
                    admit(&call).await?;
                    Ok(call.list_personas())
                })
                .await
            }
            ToolName::Remember => {
                counted(&call, tool, async {
                    let args = catalog.arguments(tool, arguments)?;
                    admit(&call).await?;
                    call.remember(args).await
                })
                .await
            }
            ToolName::Recall => {
                counted(&call, tool, async {
                    let args = catalog.arguments(tool, arguments)?;
                    admit(&call).await?;
                    call.recall(args).await
                })
                .await
            }
            ToolName::Forget => {
                counted(&call, tool, async {
                    let args = catalog.arguments(tool, arguments)?;
                    admit(&call).await?;
                    call.forget(args).await
                })
                .await
            }
            ToolName::GetRelationship => {
                counted(&call, tool, async {
                    let args = catalog.arguments(tool, arguments)?;
                    admit(&call).await?;
                    call.relationship(args).await
                })
                .await
            }
            ToolName::GetPersonaState => {
                counted(&call, tool, async {
                    let args = catalog.arguments(tool, arguments)?;
                    admit(&call).await?;
                    call.persona_state(args).await
                })
                .await
            }
        };
        if let Some(span) = span {
            let attributes = mcp_attributes(TOOLS_CALL, &auth, headers)
                .into_iter()
                .chain([
                    KeyValue::new("gen_ai.operation.name", "execute_tool"),
                    KeyValue::new("gen_ai.tool.name", tool.as_str()),
                ])
                .collect();
            span.end(&self.state.tracer, attributes, result.as_ref().err().map(ToolError::code));
        }
        Ok(result.unwrap_or_else(ToolError::into_result).into())
    }

    async fn list_resources(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListResourcesResult, ErrorData> {
        let (auth, _) = authenticated(&context)?;
        let call = Call { state: &self.state, auth: &auth, started: Instant::now() };
        // Per tenant, and moods change with every conversation: private, never fresh for long.
        Ok(ListResourcesResult::with_all_items(call.resources())
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private))
    }

    async fn list_prompts(
        &self,
        _request: Option<PaginatedRequestParams>,
        context: RequestContext<RoleServer>,
    ) -> Result<ListPromptsResult, ErrorData> {
        let (auth, _) = authenticated(&context)?;
        let call = Call { state: &self.state, auth: &auth, started: Instant::now() };
        // Per tenant; the personas change only with the config.
        Ok(ListPromptsResult::with_all_items(call.prompts())
            .with_ttl_ms(TOOLS_TTL_MS)
            .with_cache_scope(CacheScope::Private))
    }

    async fn get_prompt(
        &self,
        request: GetPromptRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<GetPromptResponse, ErrorData> {
        let (auth, parts) = authenticated(&context)?;
        let call = Call { state: &self.state, auth: &auth, started: Instant::now() };
        let span = self.state.tracer.open(&parts.headers, format!("{PROMPTS_GET} {}", request.name));
        let result = match admit(&call).await {
            Ok(()) => call.prompt(&request.name, request.arguments.as_ref()).await,
            Err(refused) => Err(ErrorData::invalid_request(refused.to_string(), None)),
        };
        if let Some(span) = span {
            let mut attributes = mcp_attributes(PROMPTS_GET, &auth, &parts.headers);
            attributes.push(KeyValue::new("gen_ai.prompt.name", request.name.clone()));
            span.end(&self.state.tracer, attributes, result.as_ref().err().map(|_| "prompt_error"));
        }
        Ok(result?.into())
    }

    async fn complete(
        &self,
        request: CompleteRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CompleteResult, ErrorData> {
        let (auth, _) = authenticated(&context)?;
        let call = Call { state: &self.state, auth: &auth, started: Instant::now() };
        let completion = match (&request.r#ref, request.argument.name.as_str()) {
            (Reference::Prompt(prompt), "subject") => {
                admit(&call)
                    .await
                    .map_err(|refused| ErrorData::invalid_request(refused.to_string(), None))?;
                call.complete_subject(&prompt.name, &request.argument.value).await?
            }
            _ => CompletionInfo::default(),
        };
        Ok(CompleteResult::new(completion))
    }

    async fn read_resource(
        &self,
        request: ReadResourceRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<ReadResourceResponse, ErrorData> {
        let (auth, parts) = authenticated(&context)?;
        let call = Call { state: &self.state, auth: &auth, started: Instant::now() };
        let span = self.state.tracer.open(&parts.headers, RESOURCES_READ.to_owned());
        let contents = call.read(&request.uri).await;
        if let Some(span) = span {
            let mut attributes = mcp_attributes(RESOURCES_READ, &auth, &parts.headers);
            attributes.push(KeyValue::new("mcp.resource.uri", request.uri.clone()));
            let error = contents.as_ref().err().map(|_| "resource_error");
            span.end(&self.state.tracer, attributes, error);
        }
        let contents = contents?;
        Ok(ReadResourceResult::new(vec![contents])
            .with_ttl_ms(0)
            .with_cache_scope(CacheScope::Private)
            .into())
    }
}

/// The caller, as the tenant auth middleware in front of `/mcp` authenticated it, and the HTTP
/// request (the chat path reads the subject and cache headers from it).
fn authenticated(context: &RequestContext<RoleServer>) -> Result<(Authenticated, &Parts), ErrorData> {
    let parts = context.extensions.get::<Parts>();
    let auth = parts.and_then(|p| p.extensions.get::<Authenticated>()).cloned();
    match (auth, parts) {
        (Some(auth), Some(parts)) => Ok((auth, parts)),
        _ => Err(ErrorData::internal_error("the MCP request was not authenticated", None)),
    }
}

/// One request against the caller's tenant and key request limits (tool calls other than
/// `chat` cost no tokens; `chat` is limited by its exchange).
async fn admit(call: &Call<'_>) -> Result<(), ToolError> {
    let caller = &call.auth.caller;
    let checks: Vec<_> = rate_checks(call.auth.runtime.tenant(&caller.tenant), caller, None, 0)
        .into_iter()
        .filter(|check| check.dimension == Dimension::Requests)
        .collect();
    if checks.is_empty() {
        return Ok(());
    }
    match call.state.limiter.acquire(&checks).await {
        Decision::Allowed(_) => Ok(()),
        Decision::Limited { retry_after, info } => {
            let error = rate_limited(retry_after, info.headers());
            if let Some(reason) = error.code() {
                call.state.metrics.refusal(&caller.tenant, reason);
            }
            Err(ToolError::Api(error))
        }
    }
}

/// The MCP semantic conventions' attributes of a call, and the caller.
fn mcp_attributes(method: &'static str, auth: &Authenticated, headers: &HeaderMap) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("mcp.method.name", method),
        KeyValue::new("switchboard.tenant", auth.caller.tenant.clone()),
        KeyValue::new("switchboard.api_key.name", auth.caller.key_id.clone()),
    ];
    let session = headers.get("mcp-session-id").and_then(|v| v.to_str().ok()).filter(|v| v.len() <= 256);
    attributes.extend(session.map(|id| KeyValue::new("mcp.session.id", id.to_owned())));
    attributes
}

/// The MCP methods traced.
const TOOLS_CALL: &str = "tools/call";
const RESOURCES_READ: &str = "resources/read";
const PROMPTS_GET: &str = "prompts/get";

/// `chat` answers with the reply as text, and the reply with usage as structured content.
fn chat_result(value: Value) -> CallToolResult {
    let reply = value["reply"].as_str().unwrap_or_default().to_owned();
    let mut result = CallToolResult::success(vec![ContentBlock::text(reply)]);
    result.structured_content = Some(value);
    result
}

impl Call<'_> {
    /// Counts a tool call in the request metrics: model `mcp/<tool>` (seven values), endpoint `mcp`.
    pub fn count(&self, tool: ToolName, status: u16) {
        let model = format!("mcp/{}", tool.as_str());
        let seconds = self.started.elapsed().as_secs_f64();
        self.state.metrics.request(&self.auth.caller.tenant, &model, "mcp", status, seconds);
    }
}
