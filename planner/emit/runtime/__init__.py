"""Programs copied verbatim into emitted folders (the Ray Serve app, Triton's python models).

pipeplan never imports them: they import ray or triton_python_backend_utils, which only the engines
have. Each reads the JSON file emitted beside it, so the same program serves every plan.
"""
