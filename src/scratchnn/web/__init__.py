"""The interactive page: draw a digit, watch the network think (``scratchnn serve``).

``create_app(model_path)`` builds the FastAPI app; FastAPI and uvicorn are imported only in
this package and the ``serve`` command, so the library itself stays NumPy-only.
"""
