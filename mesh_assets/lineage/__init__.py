"""The mesh in OpenMetadata: domains, data products, contracts, quality and lineage down to the column.

``model`` reads the workspace into plain data, ``columns`` traces dbt models' column lineage,
``openmetadata`` maps the model to the SDK's requests (the SDK is imported only there, inside
functions), ``export`` is the entry point, ``commands`` the ``mesh lineage`` CLI group and
``automation`` the platform sensor and job that export after each publication.
"""
