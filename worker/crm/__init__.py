"""CRM connectors: one module per CRM, behind the interface in `worker.crm.base`."""
