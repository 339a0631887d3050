"""tenantctl: the operator's command line for the admin API (onboard, list, suspend, re-key, offboard tenants)."""
