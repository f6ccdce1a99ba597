select 1 as entity_id
