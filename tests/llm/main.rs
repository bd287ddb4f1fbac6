//! Summaries against a real llama.cpp server (PyPI `xllamacpp` with a 270M-parameter model):
//! proof that the async-openai wire types and the provider layer work with a real
//! OpenAI-compatible server, not only with our fakes. Skipped, with a `SKIPPED:` line, where
//! the server or the model is not installed, unless `WORKHORSE_REQUIRE_LLAMA=1`.

mod extraction;
mod llama;
mod summaries;
