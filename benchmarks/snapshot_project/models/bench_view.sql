select entity_id, ev, created, f_double, f_int, f_str from {{ source('bench', 'events') }}
