"""The HTTP service: ``service.app.create_app(settings)`` builds the FastAPI app that serves
a trained model and stores every write durably (see ``docs/service.md``)."""
