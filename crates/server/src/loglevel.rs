//! `CONFIG SET loglevel`: Redis' four levels applied to the program's
//! `tracing` filter through a hook the program installs with
//! [`ServerBuilder::log_level_hook`](crate::ServerBuilder::log_level_hook)
//! (the `cairn-server` binary reloads its `EnvFilter`). A program that
//! installs none keeps its own filter, and `CONFIG SET loglevel` to another
//! level is refused rather than accepted without effect.

use std::sync::Arc;

use bytes::Bytes;
use cairn_keyspace::{CommandSpec, Ctx, Extension, Frame, Keyspace};

/// Redis' `loglevel` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum LogLevel {
    /// `debug`: everything (tracing's `trace`).
    Debug,
    /// `verbose`: tracing's `debug`.
    Verbose,
    /// `notice`, the default: tracing's `info`.
    Notice,
    /// `warning`: tracing's `warn`.
    Warning,
}

impl LogLevel {
    /// The level named as in Redis (lowercase).
    pub fn parse(name: &str) -> Option<LogLevel> {
        match name {
            "debug" => Some(LogLevel::Debug),
            "verbose" => Some(LogLevel::Verbose),
            "notice" => Some(LogLevel::Notice),
            "warning" => Some(LogLevel::Warning),
            _ => None,
        }
    }

    /// The `tracing` level it stands for.
    pub fn tracing_level(self) -> tracing::Level {
        match self {
            LogLevel::Debug => tracing::Level::TRACE,
            LogLevel::Verbose => tracing::Level::DEBUG,
            LogLevel::Notice => tracing::Level::INFO,
            LogLevel::Warning => tracing::Level::WARN,
        }
    }
}

/// What the program does when `loglevel` changes; an error is logged.
pub type LogLevelHook = Arc<dyn Fn(LogLevel) -> Result<(), String> + Send + Sync>;

/// The extension that owns `loglevel`.
pub(crate) struct LogLevelConfig {
    pub(crate) hook: Option<LogLevelHook>,
}

impl Extension for LogLevelConfig {
    fn commands(&self) -> Vec<CommandSpec> {
        Vec::new()
    }

    fn call(&self, _ctx: &mut Ctx<'_>, _args: &[Bytes]) -> Frame {
        Frame::error("ERR unknown command".to_string())
    }

    fn config_set(&self, ks: &Keyspace, name: &str, value: &[u8]) -> Option<Result<(), String>> {
        if name != "loglevel" {
            return None;
        }
        let current = ks.config_param("loglevel").unwrap_or_default();
        if self.hook.is_none() && current.as_bytes() != value {
            return Some(Err(
                "cairn does not support 'loglevel' in this program: it installed no log hook (cairn-server does)"
                    .to_string(),
            ));
        }
        Some(Ok(()))
    }

    fn config_applied(&self, _ks: &Keyspace, name: &str, value: &str) {
        if name != "loglevel" {
            return;
        }
        if let (Some(hook), Some(level)) = (&self.hook, LogLevel::parse(value))
            && let Err(e) = hook(level)
        {
            tracing::warn!(error = %e, "cannot change the log level");
        }
    }
}
