-- Orders as they are placed, pushed by the shop (a streaming view, like cart_events).
{{ featurestore.stream_windows() }}
