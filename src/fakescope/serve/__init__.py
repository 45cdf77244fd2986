"""`fakescope serve`: a web page and a REST API over `Detector` (extra `serve`).

- `app.py`: the FastAPI app factory, endpoints, model cards, JSON errors.
- `batching.py`: the micro-batching worker thread that scores concurrent requests together.
- `uploads.py`: in-memory multipart parsing and the request-body limit.
- `server.py`: binds the socket and runs uvicorn (the CLI's entry).
- `static/`: the page (one HTML, one script, one style sheet; nothing loaded from elsewhere).
"""
