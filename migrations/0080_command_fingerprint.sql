-- What makes two copies of a command the same request (for example a hash of the HTTP body an
-- order was placed with). A command id repeated with another fingerprint is refused instead of
-- being answered with the first outcome. NULL: the command carried none (every older row).
ALTER TABLE command_log ADD COLUMN fingerprint text;
