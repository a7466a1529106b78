//! Tokenizers (written next).
