"""What happens when an alert changes state: its state is stored with its webhook
deliveries (``pipeline``), Alertmanager is told (``alertmanager``), and each webhook
gets a signed POST from the outbox (``webhooks``, ``signing``). Labels and annotations
are rendered in one place (``render``).
"""
