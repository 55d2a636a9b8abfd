"""Online prediction: the pinned model (model_holder), POST /predict as domain logic (service), content negotiation
and errors, the proxy-event loop with its direct predict path (fastpath), the documented Powertools routes (api),
EMF metrics and online data capture."""
