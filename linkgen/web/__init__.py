"""HTTP layer: blueprints (api, sdk, ui, link domain) and error handlers. Views stay thin."""
