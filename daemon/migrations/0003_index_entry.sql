-- memd's index entry of each strategy (issue 27): the fields its in-memory index needs
-- (name, classification, status, figures, ...) as a small JSON text beside the document,
-- written with it in the same statement. A start reads these instead of every document
-- (a tenth of the bytes, and no JSONB-to-text on the server). A row without one (written
-- before this migration, or by another tool) is indexed from its document.
ALTER TABLE strategies ADD COLUMN index_entry TEXT;
