{#
  On-demand (request-time) features: a model whose SQL is `{{ featurestore.on_demand_view() }}`
  and whose YAML has `config.meta.featurestore.on_demand: {request: {field: type}, inputs:
  [view:feature]}`; each column is a feature with a data_type and an `expression` (column meta)
  over the request fields and inputs by bare name. The same rules as the Python registry and
  featurestore/ondemand.py (tests/unit/test_registry_parity.py).
#}

{% macro on_demand_view() %}
    {{ return(adapter.dispatch('on_demand_view', 'featurestore')()) }}
{% endmacro %}


{% macro default__on_demand_view() %}
    {#- A view of no rows that computes every expression, cast to its declared type, over typed
        NULLs of the request fields and inputs: `dbt build` compiles and type-checks each
        expression in the warehouse, and the declared-vs-built type check then applies. -#}
    {%- if not execute -%}
        {{ return('select 1 as _fs_parsed') }}
    {%- endif -%}
    {%- set where = "featurestore.on_demand_view in model '" ~ model.name ~ "'" -%}
    {%- set spec = featurestore._on_demand_spec(model, where) -%}
    {%- set scope = [] -%}
    {%- for name, data_type in spec['scope'] -%}
        {%- do scope.append('cast(null as ' ~ featurestore.column_type(data_type) ~ ') as ' ~ featurestore._q(name)) -%}
    {%- endfor -%}
    {%- set outputs = [] -%}
    {%- for name, expression, data_type in spec['features'] -%}
        {%- do outputs.append('cast((' ~ expression ~ ') as ' ~ featurestore.column_type(data_type) ~ ') as ' ~ featurestore._q(name)) -%}
    {%- endfor -%}
    select {{ outputs | join(', ') }}
    from (select {{ scope | join(', ') }} where 1 = 0) as _fs_inputs
{% endmacro %}


{% macro _is_on_demand_view(node) %}
    {#- The registry's rule: a model with config.meta.featurestore.on_demand that is not a feature view. -#}
    {{ return(node.resource_type == 'model' and 'on_demand' in ((node.config.meta or {}).get('featurestore') or {})
              and not featurestore._is_feature_view(node)) }}
{% endmacro %}


{% macro _on_demand_spec(node, where) %}
    {#- {scope: [(name, data_type)] of the request fields then the inputs (by bare name),
         request: [(name, data_type)], inputs: [(view, feature, data_type)],
         features: [(name, expression, data_type)]} of an on-demand view's node. -#}
    {%- set on_demand = ((node.config.meta or {}).get('featurestore') or {}).get('on_demand') or {} -%}
    {%- set request = [] -%}
    {%- for name, data_type in (on_demand.get('request') or {}).items() -%}
        {%- do request.append((name, data_type)) -%}
    {%- endfor -%}
    {%- set inputs = [] -%}
    {%- for reference in on_demand.get('inputs') or [] -%}
        {%- set parts = reference.split(':') -%}
        {%- set view = featurestore._model_named(parts[0], where) -%}
        {%- if parts | length != 2 or parts[1] not in view.columns -%}
            {{ exceptions.raise_compiler_error(where ~ ": input '" ~ reference ~ "' is not a feature of a feature view (view:feature)") }}
        {%- endif -%}
        {%- do inputs.append((parts[0], parts[1], view.columns[parts[1]].data_type)) -%}
    {%- endfor -%}
    {%- set scope = request + [] -%}
    {%- for view, feature, data_type in inputs -%}
        {%- do scope.append((feature, data_type)) -%}
    {%- endfor -%}
    {%- set features = [] -%}
    {%- for name, column in node.columns.items() -%}
        {%- set expression = (((column.config or {}).get('meta') or column.meta or {}).get('featurestore') or {}).get('expression') -%}
        {%- if not expression or not column.data_type -%}
            {{ exceptions.raise_compiler_error(where ~ ": feature '" ~ name ~ "' needs a data_type and `config: {meta: {featurestore: {expression: ...}}}`") }}
        {%- endif -%}
        {%- do features.append((name, expression, column.data_type)) -%}
    {%- endfor -%}
    {{ return({'scope': scope, 'request': request, 'inputs': inputs, 'features': features}) }}
{% endmacro %}
