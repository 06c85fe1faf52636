"""What the domain knows about talking to a chat model, without any LLM client.

* :mod:`~lapt.llm.schema`: the JSON schema an LLM is sent, in the form OpenAI's strict mode accepts;
* :mod:`~lapt.llm.cache`: the response cache that makes repeated LLM benches free and deterministic;
* :mod:`~lapt.llm.redaction`: the one redactor that keeps API keys and URL passwords out of every file.
"""
