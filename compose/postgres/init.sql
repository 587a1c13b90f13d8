-- Synapse needs its own database with C collation; the control plane uses the default database "tim".
CREATE DATABASE synapse ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0 OWNER tim;
