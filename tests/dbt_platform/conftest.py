from dbt_toy import toy_project  # noqa: F401  (fixture)
