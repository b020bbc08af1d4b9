//! Re-exports of the procedural macros from `gort-macros`.
