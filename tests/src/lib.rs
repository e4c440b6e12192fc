//! Shared fixtures for cairn's black-box suites (placeholder).
