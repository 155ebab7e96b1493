//! Which public API a request came through: the request log's `endpoint`, and the GenAI
//! operation its spans and metrics name.

/// Which public API the request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Messages,
    /// The MCP server's `chat` tool.
    Mcp,
    /// A persona's model extracting memories from a conversation (`extraction: Model`).
    MemoryExtraction,
    /// The vectors of a persona's memories and of the queries that recall them.
    MemoryEmbedding,
    /// A persona's model summarising a conversation into a memory (`summaries`).
    MemorySummary,
    Embeddings,
    /// OpenAI's Responses API, served as a chat.
    Responses,
    /// OpenAI's legacy completions.
    Completions,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat_completions",
            Self::Messages => "messages",
            Self::Mcp => "mcp",
            Self::MemoryExtraction => "memory_extraction",
            Self::MemoryEmbedding => "memory_embedding",
            Self::MemorySummary => "memory_summary",
            Self::Embeddings => "embeddings",
            Self::Responses => "responses",
            Self::Completions => "completions",
        }
    }

    /// The OpenTelemetry GenAI operation (`gen_ai.operation.name`).
    pub fn operation(self) -> &'static str {
        match self {
            Self::Embeddings | Self::MemoryEmbedding => "embeddings",
            Self::Completions => "text_completion",
            Self::ChatCompletions
            | Self::Messages
            | Self::Mcp
            | Self::MemoryExtraction
            | Self::MemorySummary
            | Self::Responses => "chat",
        }
    }
}
