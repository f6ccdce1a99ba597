"""validate() on registries read from hand-built manifests: every rule it enforces, once broken
(the problem names its file, model and column) and once kept (no such problem). No dbt.

The clean project: an entity `customer` declared on `customers` (models/dims.yml), a feature
view `customer_features` (models/features.yml) and a service `churn_model` (models/services.yml).
"""

from __future__ import annotations

import copy

import pyarrow as pa
import pytest

from featurestore.registry import registry_from_manifest
from featurestore.validate import ERROR, WARNING, Problem, built_type_problems, errors, validate

DIMS, FEATURES, SERVICES = "models/dims.yml", "models/features.yml", "models/services.yml"
ENTITY = {"name": "customer", "join_keys": ["customer_id"], "description": "A customer."}
VIEW_META = {"entities": ["customer"], "event_timestamp": "feature_ts", "created_timestamp": "loaded_at",
             "ttl": "2d", "online": True, "owner": "team@example.com", "max_staleness": "1d"}


def column(data_type="double", description="A number.", **featurestore):
    spec = {"data_type": data_type, "description": description}
    if featurestore:
        spec["config"] = {"meta": {"featurestore": featurestore}}
    return spec


VIEW_COLUMNS = {
    "customer_id": column("varchar", "The customer."),
    "feature_ts": column("timestamp", "When."),
    "loaded_at": column("timestamp", "Loaded."),
    "orders_7d": column("bigint", "Orders in 7 days.", window="7d", expect={"min": 0}),
    "lifetime_value": column("double", "Spent so far.", drift={"max_psi": 0.25}),
}


def dimension(name="customers", entities=(ENTITY,), columns=("customer_id",), yaml=DIMS):
    return {"resource_type": "model", "name": name, "unique_id": f"model.shop.{name}",
            "config": {"materialized": "table", "meta": {"featurestore": {"entities": list(entities)}}},
            "columns": {c: {} for c in columns}, "original_file_path": f"models/{name}.sql",
            "patch_path": f"shop://{yaml}"}


def view(name="customer_features", meta=None, columns=None, description="Customer features.", raw_code="select 1"):
    return {"resource_type": "model", "name": name, "unique_id": f"model.shop.{name}",
            "config": {"materialized": "feature_view",
                       "meta": {"featurestore": VIEW_META if meta is None else meta}},
            "columns": copy.deepcopy(VIEW_COLUMNS if columns is None else columns), "description": description,
            "raw_code": raw_code, "original_file_path": f"models/{name}.sql", "patch_path": f"shop://{FEATURES}"}


def service(name="churn_model", features=("customer_features:orders_7d",), depends_on=("customer_features",)):
    meta = {} if features is None else {"features": list(features) if isinstance(features, tuple) else features}
    return {"name": name, "type": "ml", "config": {"meta": {"featurestore": meta}}, "original_file_path": SERVICES,
            "depends_on": {"nodes": [f"model.shop.{model}" for model in depends_on]}}


def registry(models=None, services=None):
    models = [dimension(), view()] if models is None else models
    services = [service()] if services is None else services
    return registry_from_manifest({
        "metadata": {"project_name": "shop", "adapter_type": "duckdb"},
        "nodes": {model["unique_id"]: model for model in models},
        "exposures": {f"exposure.shop.{s['name']}": s for s in services},
    })


def found(rule, models=None, services=None, project_dir=None) -> list[Problem]:
    return [p for p in validate(registry(models, services), project_dir) if p.rule == rule]


def with_meta(**changes):
    meta = {**VIEW_META, **changes}
    return {key: value for key, value in meta.items() if value is not None}


def with_columns(drop=(), **columns):
    out = {name: spec for name, spec in copy.deepcopy(VIEW_COLUMNS).items() if name not in drop}
    out.update(columns)
    return out


def the_one(problems: list[Problem], severity=ERROR, file=FEATURES, model="customer_features", column=None) -> Problem:
    """The single problem found, naming where it is."""
    assert len(problems) == 1, [str(p) for p in problems]
    problem = problems[0]
    where = (problem.severity, problem.file, problem.model, problem.column)
    assert where == (severity, file, model, column), str(problem)
    return problem


def test_the_clean_project_has_no_problem_at_all():
    assert validate(registry()) == []


# -- entities ------------------------------------------------------------------------------------


def test_an_entity_name_must_be_snake_case():
    problem = the_one(found("naming", [dimension(entities=[{**ENTITY, "name": "Customer"}]),
                                       view(meta=with_meta(entities=["Customer"]))]), file=DIMS, model="customers")
    assert problem.message == "entity name 'Customer' is not snake_case"


def test_an_entity_declared_twice_names_the_first_declaration():
    models = [dimension(), dimension("accounts", columns=("customer_id",)), view()]
    problem = the_one(found("duplicate-entity", models), file=DIMS, model="accounts")
    assert "entity 'customer' is declared again" in problem.message and "model 'customers'" in problem.message


def test_two_entities_on_two_models_are_no_duplicate():
    other = {"name": "account", "join_keys": ["account_id"], "description": "An account."}
    assert found("duplicate-entity", [dimension(), dimension("accounts", [other], ("account_id",)), view()]) == []


def test_an_entity_needs_join_keys():
    problem = the_one(found("entity-join-keys", [dimension(entities=[{**ENTITY, "join_keys": []}]), view()]),
                      file=DIMS, model="customers")
    assert problem.message == "entity 'customer' has no join_keys"


def test_an_entity_join_key_must_be_a_column_of_its_model():
    models = [dimension(columns=("id",)), view()]
    problem = the_one([p for p in found("missing-join-key", models) if p.model == "customers"],
                      file=DIMS, model="customers", column="customer_id")
    assert problem.message == ("join key 'customer_id' of entity 'customer' is not a column of the model that "
                               "declares it")


def test_an_entity_without_description_is_a_warning():
    problem = the_one(found("missing-description", [dimension(entities=[{**ENTITY, "description": ""}]), view()]),
                      severity=WARNING, file=DIMS, model="customers")
    assert "entity 'customer' has no description" in problem.message


def test_a_composite_entity_with_all_its_keys_is_clean():
    pair = {"name": "customer_product", "join_keys": ["customer_id", "product_type"], "description": "A pair."}
    models = [dimension(entities=[ENTITY, pair], columns=("customer_id", "product_type")),
              view(meta=with_meta(entities=["customer_product"]),
                   columns=with_columns(product_type=column("varchar", "The product type.")))]
    assert validate(registry(models)) == []


# -- feature views: identity, entities, owner, description ---------------------------------------


def test_a_view_name_must_be_snake_case():
    models = [dimension(), view("CustomerFeatures")]
    problem = the_one(found("naming", models, [service(depends_on=())]), model="CustomerFeatures")
    assert problem.message == "feature view name 'CustomerFeatures' is not snake_case"


def test_a_view_must_list_entities():
    problem = the_one(found("unknown-entity", [dimension(), view(meta=with_meta(entities=[]))]))
    assert "lists no entities" in problem.message


def test_an_undeclared_entity_lists_the_declared_ones():
    problem = the_one(found("unknown-entity", [dimension(), view(meta=with_meta(entities=["account"]))]))
    assert problem.message == "entity 'account' is not declared (declared entities: customer)"


def test_an_undeclared_entity_says_when_none_is_declared():
    problem = the_one(found("unknown-entity", [view(meta=with_meta(entities=["customer"]))]))
    assert problem.message.endswith("(declared entities: none declared)")


def test_a_view_must_have_its_entities_join_keys():
    problem = the_one(found("missing-join-key", [dimension(), view(columns=with_columns(drop=["customer_id"]))]),
                      column="customer_id")
    assert problem.message == "join key 'customer_id' of entity 'customer' is not among the model's columns"


def test_a_view_needs_an_owner():
    problem = the_one(found("missing-owner", [dimension(), view(meta=with_meta(owner=None))]))
    assert "add `owner:` under config.meta.featurestore" in problem.message


def test_a_view_without_description_is_a_warning():
    problem = the_one(found("missing-description", [dimension(), view(description="")]), severity=WARNING)
    assert problem.message == "the feature view has no description"


def test_a_view_without_features_is_an_error():
    keys_and_times = with_columns(drop=["orders_7d", "lifetime_value"])
    problem = the_one(found("no-features", [dimension(), view(columns=keys_and_times)], [service(features=None)]))
    assert "no feature columns declared" in problem.message


# -- feature views: durations --------------------------------------------------------------------


def test_a_view_without_ttl_is_a_warning_not_an_error():
    problem = the_one(found("no-ttl", [dimension(), view(meta=with_meta(ttl=None))]), severity=WARNING)
    assert "never expire" in problem.message
    assert errors(validate(registry([dimension(), view(meta=with_meta(ttl=None))]))) == []


def test_ttl_null_says_the_values_never_expire_on_purpose():
    meta = {**VIEW_META, "ttl": None}  # `ttl: null` in the YAML: the key is there
    assert validate(registry([dimension(), view(meta=meta)])) == []
    assert found("no-ttl", [dimension(), view(meta={**VIEW_META, "ttl": ""})])  # an empty ttl is no such statement


@pytest.mark.parametrize("ttl", ["7 days", "2x", "-1d", "d"])
def test_a_malformed_ttl_is_an_error(ttl):
    problem = the_one(found("bad-ttl", [dimension(), view(meta=with_meta(ttl=ttl))]))
    assert problem.message.startswith("ttl ") and repr(ttl) in problem.message


@pytest.mark.parametrize("ttl", [0, 5, True])
def test_a_ttl_that_is_not_a_string_is_one_problem(ttl):
    problems = [p for p in validate(registry([dimension(), view(meta=with_meta(ttl=ttl))])) if p.severity == ERROR]
    assert [p.rule for p in problems] == ["bad-type"], [str(p) for p in problems]


@pytest.mark.parametrize("ttl", ["30s", "15m", "12h", "2d", "1w", "365d"])
def test_well_formed_ttls_pass(ttl):
    assert found("bad-ttl", [dimension(), view(meta=with_meta(ttl=ttl))]) == []


@pytest.mark.parametrize("staleness", ["a day", "1 d", "0h"])
def test_a_malformed_max_staleness_is_an_error_naming_it(staleness):
    problem = the_one(found("bad-ttl", [dimension(), view(meta=with_meta(max_staleness=staleness))]))
    assert problem.message.startswith("max_staleness ")


def test_a_view_without_max_staleness_is_fine():
    assert validate(registry([dimension(), view(meta=with_meta(max_staleness=None))])) == []


# -- feature views: features ---------------------------------------------------------------------


def test_feature_names_are_compared_without_case():
    columns = with_columns(lifetime_value=column("double", "Spent."), Lifetime_Value=column("double", "Again."))
    problems = found("duplicate-feature", [dimension(), view(columns=columns)])
    assert {p.column for p in problems} == {"lifetime_value", "Lifetime_Value"}
    assert all(p.model == "customer_features" and p.file == FEATURES and "more than once" in p.message
               for p in problems)


def test_a_feature_needs_a_description():
    columns = with_columns(lifetime_value=column("double", ""))
    problem = the_one(found("missing-description", [dimension(), view(columns=columns)]), column="lifetime_value")
    assert problem.message == "the feature has no description"


def test_a_feature_needs_a_data_type():
    columns = with_columns(lifetime_value={"description": "Spent."})
    problem = the_one(found("missing-type", [dimension(), view(columns=columns)]), column="lifetime_value")
    assert problem.message == "the feature has no data_type"


def test_a_misspelt_data_type_is_a_warning_naming_the_closest_type():
    columns = with_columns(lifetime_value=column("dobule", "Spent."))
    problem = the_one(found("unknown-type", [dimension(), view(columns=columns)]), severity=WARNING,
                      column="lifetime_value")
    assert "'dobule' is not a type featurestore knows (did you mean 'double'?)" in problem.message


@pytest.mark.parametrize("data_type, closest", [("intger[]", "integer"), ("double precison", "double precision"),
                                                ("decmial(18,2)", "decimal"), ("BIGNIT", "bigint")])
def test_a_typo_inside_an_array_or_a_two_word_type_is_found_too(data_type, closest):
    columns = with_columns(lifetime_value=column(data_type, "Spent."))
    problem = the_one(found("unknown-type", [dimension(), view(columns=columns)]), severity=WARNING,
                      column="lifetime_value")
    assert f"'{data_type}' is not a type featurestore knows (did you mean '{closest}'?)" in problem.message


def test_a_misspelt_join_key_type_says_the_key_is_then_untyped_online():
    columns = with_columns(customer_id=column("bigitn", "The customer."))
    problem = the_one(found("unknown-type", [dimension(), view(columns=columns)]), severity=WARNING,
                      column="customer_id")
    assert "did you mean 'bigint'?" in problem.message and "strings and integers alike" in problem.message


@pytest.mark.parametrize("data_type", ["struct<a int>", "STRUCT(a INTEGER)", "integer[]", "array<string>", "json",
                                       "map(varchar, double)", "varchar(max)", "uuid", "blob", "uhugeint",
                                       "double precision", "timestamp(3) with time zone", "character varying(20)",
                                       "text[]", "integer[][]", "time with time zone", "interval", "serial",
                                       "citext", "tsrange", "varchar collate nocase", "integer array", "int unsigned"])
def test_types_known_or_knowingly_unchecked_are_not_reported(data_type):
    columns = with_columns(lifetime_value=column(data_type, "Spent."))
    assert found("unknown-type", [dimension(), view(columns=columns)]) == []


@pytest.mark.parametrize("name", ["LifetimeValue", "lifetime-value", "2nd_order", "lifetime__value", "value_"])
def test_a_feature_name_must_be_snake_case(name):
    columns = with_columns(drop=["lifetime_value"], **{name: column()})
    problem = the_one(found("naming", [dimension(), view(columns=columns)], [service()]), column=name)
    assert problem.message == f"feature name '{name}' is not snake_case"


@pytest.mark.parametrize("name", ["x", "value_2", "p95_latency", "a1_b2_c3"])
def test_snake_case_feature_names_pass(name):
    columns = with_columns(**{name: column()})
    assert found("naming", [dimension(), view(columns=columns)]) == []


@pytest.mark.parametrize("name, window", [("orders_7d", "30d"), ("orders", "7d"), ("orders_7d_total", "7d")])
def test_a_windowed_feature_must_end_in_its_window(name, window):
    columns = with_columns(drop=["orders_7d"], **{name: column("bigint", "Orders.", window=window)})
    problem = the_one(found("naming", [dimension(), view(columns=columns)], [service(features=None)]), column=name)
    assert f"must end in '_{window}'" in problem.message and f"'{name}_{window}'" in problem.message


@pytest.mark.parametrize("name, window", [("orders_30m", "30m"), ("orders_12h", "12h"), ("orders_2w", "2w"),
                                          ("orders_7d", "7D")])
def test_a_feature_ending_in_its_window_passes(name, window):
    columns = with_columns(drop=["orders_7d"], **{name: column("bigint", "Orders.", window=window)})
    assert found("naming", [dimension(), view(columns=columns)], [service(features=None)]) == []


@pytest.mark.parametrize("name, suffix", [("orders_7d", "7d"), ("visits_30m", "30m"), ("logins_1w", "1w")])
def test_a_window_suffix_without_a_window_is_an_error(name, suffix):
    columns = with_columns(drop=["orders_7d"], **{name: column("bigint", "Counted.")})
    problem = the_one(found("naming", [dimension(), view(columns=columns)], [service(features=None)]), column=name)
    assert f"ends in a window suffix '_{suffix}' but declares no `window: {suffix}`" in problem.message


def test_a_malformed_window_is_reported_once():
    columns = with_columns(drop=["orders_7d"], orders_week=column("bigint", "Orders.", window="a week"))
    problem = the_one(found("naming", [dimension(), view(columns=columns)], [service(features=None)]),
                      column="orders_week")
    assert problem.message.startswith("window ") and "'a week'" in problem.message


@pytest.mark.parametrize("name", ["valid_from", "valid_to", "superseded_at", "entity_key", "event_timestamp",
                                  "created_timestamp", "_created_timestamp", "_fs_anything"])
def test_names_featurestore_uses_itself_are_reserved(name):
    columns = with_columns(**{name: column()})
    problem = the_one(found("reserved-name", [dimension(), view(columns=columns)]), column=name)
    assert f"feature name '{name}' is used by featurestore itself" in problem.message


@pytest.mark.parametrize("name", ["valid_from_date", "fs_score", "key", "event_count"])
def test_names_near_the_reserved_ones_pass(name):
    assert found("reserved-name", [dimension(), view(columns=with_columns(**{name: column()}))]) == []


# -- feature views: expectations and drift -------------------------------------------------------


@pytest.mark.parametrize("meta, words", [
    ({"drift": 0.2}, "`drift` must be a mapping, e.g. `drift: {max_psi: 0.25}`"),
    ({"expect": "positive"}, "`expect` must be a mapping, e.g. `expect: {min: 0}`"),
    ({"expect": {"values": []}}, "expect.values must be a non-empty list"),
    ({"expect": {"values": [True, None]}}, "may hold only strings and numbers; got [True, None]"),
    ({"expect": {"max_null_rate": -0.1}}, "expect.max_null_rate must be a number from 0 to 1"),
    ({"expect": {"max_null_rate": "5%"}}, "expect.max_null_rate must be a number from 0 to 1, not '5%'"),
    ({"expect": {"min": True}}, "expect.min must be a number, not True"),
    ({"drift": {"max_tvd": 0}}, "drift.max_tvd must be a positive number, not 0"),
    ({"drift": {"max_psi": "high"}}, "drift.max_psi must be a positive number"),
    ({"drift": {"max_kl": 1}}, "drift has unknown key(s) max_kl; known: max_psi, max_tvd"),
    ({"expect": {"min": 1, "maximum": 2}}, "expect has unknown key(s) maximum"),
])
def test_a_malformed_expectation_names_the_column(meta, words):
    columns = with_columns(lifetime_value=column("double", "Spent.", **meta))
    problems = found("bad-expectation", [dimension(), view(columns=columns)])
    assert any(words in p.message for p in problems), [p.message for p in problems]
    assert {(p.file, p.model, p.column, p.severity) for p in problems} == {(FEATURES, "customer_features",
                                                                             "lifetime_value", ERROR)}


@pytest.mark.parametrize("meta", [
    {"expect": {"min": 0, "max": 0}},
    {"expect": {"min": -1.5, "max": 2}},
    {"expect": {"values": [1, 2.5, "three"]}},
    {"expect": {"max_null_rate": 0}},
    {"expect": {"max_null_rate": 1}},
    {"drift": {"max_psi": 0.1, "max_tvd": 0.05}},
    {"expect": {"min": 0}, "drift": {"max_psi": 2}},
])
def test_well_formed_expectations_pass(meta):
    columns = with_columns(lifetime_value=column("double", "Spent.", **meta))
    assert found("bad-expectation", [dimension(), view(columns=columns)]) == []


# -- feature views: meta types and keys ----------------------------------------------------------


@pytest.mark.parametrize("changes, words", [
    ({"push": "yes"}, "`push: 'yes'` must be true or false"),
    ({"created_timestamp": 3}, "`created_timestamp: 3` must be a string, e.g. `created_timestamp: feature_ts`"),
    ({"owner": 42}, "`owner: 42` must be a string, e.g. `owner: team@example.com`"),
    ({"tags": ["orders", 7]}, "`tags: ['orders', 7]` must be a list of strings"),
    ({"ttl": 2}, "`ttl: 2` must be a duration string, e.g. `ttl: 2d`"),
])
def test_a_meta_value_of_the_wrong_type_is_an_error(changes, words):
    problems = found("bad-type", [dimension(), view(meta=with_meta(**changes))])
    assert any(words in p.message and (p.file, p.model) == (FEATURES, "customer_features") for p in problems), \
        [str(p) for p in problems]


def test_every_known_meta_key_of_the_right_type_passes():
    meta = with_meta(push=True, tags=["orders", "customers"], description="More words.")
    assert validate(registry([dimension(), view(meta=meta)])) == []


def test_an_unknown_meta_key_is_a_warning_listing_the_known_ones():
    problem = the_one(found("unknown-key", [dimension(), view(meta=with_meta(tll="2d", onlne=True))]),
                      severity=WARNING)
    assert "unknown key(s) onlne, tll" in problem.message and "known: created_timestamp, description" in problem.message


# -- feature views: timestamps -------------------------------------------------------------------


def test_a_view_needs_an_event_timestamp():
    meta = with_meta(event_timestamp=None)
    problems = found("missing-timestamp", [dimension(), view(meta=meta, columns=with_columns(drop=["feature_ts"]))])
    assert the_one(problems).message == "the feature view has no event_timestamp column in config.meta.featurestore"


@pytest.mark.parametrize("role, changes", [("event_timestamp", {"event_timestamp": "updated_at"}),
                                           ("created_timestamp", {"created_timestamp": "inserted_at"})])
def test_a_timestamp_column_must_be_declared(role, changes):
    column_name = next(iter(changes.values()))
    problem = the_one(found("missing-timestamp", [dimension(), view(meta=with_meta(**changes))]), column=column_name)
    assert problem.message == f"{role} column '{column_name}' is not among the model's columns"


def test_a_timestamp_column_needs_a_data_type():
    columns = with_columns(feature_ts={"description": "When."})
    problem = the_one(found("missing-type", [dimension(), view(columns=columns)]), column="feature_ts")
    assert problem.message == "event_timestamp column has no data_type"


@pytest.mark.parametrize("role, column_name, data_type", [
    ("event_timestamp", "feature_ts", "varchar"),
    ("event_timestamp", "feature_ts", "bigint"),
    ("created_timestamp", "loaded_at", "double"),
    ("created_timestamp", "loaded_at", "json"),
])
def test_a_timestamp_column_must_be_a_timestamp_or_date(role, column_name, data_type):
    columns = with_columns(**{column_name: column(data_type, "When.")})
    problem = the_one(found("bad-timestamp-type", [dimension(), view(columns=columns)]), column=column_name)
    assert problem.message == f"{role} column has data_type '{data_type}'; it must be a timestamp or date"


@pytest.mark.parametrize("data_type", ["timestamp", "TIMESTAMP", "date", "datetime", "timestamptz",
                                       "timestamp with time zone", "timestamp(3)", "timestamp_ntz", "timestamp_ns"])
def test_timestamp_and_date_types_pass(data_type):
    columns = with_columns(feature_ts=column(data_type, "When."))
    assert found("bad-timestamp-type", [dimension(), view(columns=columns)]) == []


def test_a_view_without_created_timestamp_is_fine():
    meta = with_meta(created_timestamp=None)
    assert validate(registry([dimension(), view(meta=meta, columns=with_columns(drop=["loaded_at"]))])) == []


@pytest.mark.parametrize("raw_code", [
    "select customer_id, ordered_at as feature_ts, ordered_at as loaded_at from orders",
    'select customer_id, o.ordered_at as "feature_ts", o.ordered_at as "loaded_at" from orders o',
    "select customer_id, feature_ts, feature_ts as loaded_at from orders",
    "select customer_id, ordered_at::timestamp as feature_ts, ordered_at :: timestamp with time zone as loaded_at from o",
    "select customer_id, o.ordered_at::timestamp(3) with time zone as feature_ts, ordered_at::timestamp as loaded_at",
])
def test_a_created_timestamp_copied_from_the_event_time_is_a_warning(raw_code):
    problem = the_one(found("created-is-event", [dimension(), view(raw_code=raw_code)]), severity=WARNING,
                      column="loaded_at")
    assert "the created timestamp 'loaded_at' is the event time" in problem.message


@pytest.mark.parametrize("raw_code", [
    "select customer_id, ordered_at as feature_ts, _loaded_at as loaded_at from orders",
    "select customer_id, feature_ts, loaded_at from windowed",
    "select customer_id, ordered_at::timestamp as feature_ts, _loaded_at::timestamp as loaded_at from orders",
    "select customer_id, x::timestamp with time zone as feature_ts, y::timestamp with time zone as loaded_at from o",
    "select customer_id, cast(x as timestamp) as feature_ts, cast(y as timestamp) as loaded_at from orders",
    "select customer_id, x::decimal(18, 2) as feature_ts, y::decimal(18, 2) as loaded_at from orders",
    "select customer_id, x::timestamp(3) with time zone as feature_ts, y::timestamp(3) with time zone as loaded_at",
    "select customer_id, date_trunc('day', a)::timestamp as feature_ts, date_trunc('day', b)::timestamp as loaded_at",
    "select customer_id, (a)::timestamp as feature_ts, (b)::timestamp as loaded_at from orders",
])
def test_a_created_timestamp_from_its_own_column_passes(raw_code):
    assert found("created-is-event", [dimension(), view(raw_code=raw_code)]) == []


# -- the YAML file itself ------------------------------------------------------------------------


def test_a_column_declared_twice_in_the_yaml_is_found_in_the_file(tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / FEATURES).write_text("""version: 2
models:
  - name: other_model
    columns: [{name: tier}, {name: tier}]
  - name: customer_features
    columns:
      - {name: customer_id}
      - {name: lifetime_value}
      - {name: lifetime_value}
""")
    problem = the_one(found("duplicate-feature", project_dir=tmp_path), column="lifetime_value")
    assert problem.message == "column 'lifetime_value' is declared 2 times in the YAML; dbt keeps only one of them"
    assert found("duplicate-feature") == []  # without the project folder the YAML is not read


@pytest.mark.parametrize("text", [None, "models: [oops", "version: 2\nmodels:\n  - name: customer_features\n"
                                  "    columns: [{name: customer_id}, {name: lifetime_value}]\n"])
def test_a_missing_unreadable_or_clean_yaml_adds_no_problem(tmp_path, text):
    if text is not None:
        (tmp_path / "models").mkdir()
        (tmp_path / FEATURES).write_text(text)
    assert validate(registry(), tmp_path) == []


# -- feature services ----------------------------------------------------------------------------


def test_service_features_must_be_strings():
    problem = the_one(found("bad-type", services=[service(features=["customer_features:orders_7d", 7])]),
                      file=SERVICES, model="churn_model")
    assert "must be a list of 'view:feature' references" in problem.message


def test_a_service_must_use_some_feature():
    problem = the_one(found("unknown-feature-reference", services=[service(features=[], depends_on=())]),
                      file=SERVICES, model="churn_model")
    assert "uses no features" in problem.message


def test_an_ml_exposure_of_no_feature_view_is_not_a_service():
    """A model trained elsewhere: an ml exposure listing no features and using no feature view."""
    reg = registry(services=[service(features=None, depends_on=())])
    assert "churn_model" not in reg.services
    assert validate(reg) == []


def test_a_service_without_a_list_uses_the_features_of_its_views():
    reg = registry(services=[service(features=None)])
    assert reg.service("churn_model").feature_refs == ("customer_features:orders_7d",
                                                       "customer_features:lifetime_value")
    assert validate(reg) == []


@pytest.mark.parametrize("reference, words", [
    ("customer_features.orders_7d", "is not of the form 'view:feature'"),
    (":orders_7d", "is not of the form 'view:feature'"),
    ("customer_features:", "is not of the form 'view:feature'"),
    ("store_features:orders_7d", "there is no feature view 'store_features'"),
    ("customer_features:orders_30d", "view 'customer_features' has no feature 'orders_30d'"),
    ("customer_features:customer_id", "view 'customer_features' has no feature 'customer_id'"),
])
def test_a_wrong_feature_reference_is_named(reference, words):
    """Named in the exposure that lists it (a trial read "model 'churn_model', column
    'orders_30d'" for an exposure's reference to another model's feature)."""
    problem = the_one(found("unknown-feature-reference", services=[service(features=(reference,))]),
                      file=SERVICES, model="churn_model", column=None)
    assert f"feature reference '{reference}'" in problem.message and words in problem.message
    assert str(problem).startswith(f"error: {SERVICES}, exposure 'churn_model': feature reference")


def test_a_feature_from_a_view_outside_depends_on_is_a_lineage_warning():
    problem = the_one(found("service-lineage", services=[service(depends_on=())]), severity=WARNING,
                      file=SERVICES, model="churn_model")
    assert "add ref('customer_features')" in problem.message


def test_a_service_depending_on_its_views_has_no_lineage_warning():
    assert found("service-lineage") == []


# -- types of the built table, and how problems read ---------------------------------------------


def test_a_built_column_of_another_type_is_a_type_mismatch_naming_it():
    reg = registry()
    built = pa.schema([("customer_id", pa.string()), ("feature_ts", pa.timestamp("us")),
                       ("loaded_at", pa.timestamp("us")), ("orders_7d", pa.decimal128(38, 0)),
                       ("lifetime_value", pa.float64())])
    problem = the_one(built_type_problems(reg.view("customer_features"), built, "duckdb"), column="orders_7d")
    assert problem.rule == "type-mismatch" and "declared `data_type: bigint`" in problem.message


def test_built_columns_of_the_declared_types_pass_whatever_their_case():
    built = pa.schema([("CUSTOMER_ID", pa.large_string()), ("Feature_TS", pa.timestamp("ns")),
                       ("loaded_at", pa.timestamp("s")), ("orders_7d", pa.int64()), ("lifetime_value", pa.float64())])
    assert built_type_problems(registry().view("customer_features"), built, "duckdb") == []


def test_a_column_missing_from_the_built_table_is_left_to_dbt():
    built = pa.schema([("customer_id", pa.string()), ("orders_7d", pa.int64())])
    assert built_type_problems(registry().view("customer_features"), built, "duckdb") == []


def test_a_problem_reads_as_one_line_with_where_and_rule():
    problem = Problem(ERROR, "missing-type", "the feature has no data_type", FEATURES, "customer_features", "x")
    assert str(problem) == ("error: models/features.yml, model 'customer_features', column 'x': "
                            "the feature has no data_type [missing-type]")
    assert str(Problem(WARNING, "no-ttl", "no ttl", "")) == "warning: ?: no ttl [no-ttl]"
    assert problem.as_dict()["column"] == "x" and errors([problem, Problem(WARNING, "r", "m", "f")]) == [problem]
