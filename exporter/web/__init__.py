"""Transport and access control: HTTP/1.1 serving, TLS, basic auth and the exporter-toolkit web config.

Nothing here knows about neuron-monitor: the server is handed a render function and answers with it.
"""
