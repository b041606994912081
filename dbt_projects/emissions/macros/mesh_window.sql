{#- The Dagster partition window of an incremental model, passed by the platform as the vars
    mesh_window_start / mesh_window_end (ISO dates, end exclusive). Without them: every row. -#}
{% macro mesh_window(date_expression) -%}
  {%- set start = var('mesh_window_start', none) -%}
  {%- set end = var('mesh_window_end', none) -%}
  {%- if start is not none and end is not none -%}
    and {{ date_expression }} >= cast('{{ start }}' as date)
    and {{ date_expression }} < cast('{{ end }}' as date)
  {%- endif -%}
{%- endmacro %}
