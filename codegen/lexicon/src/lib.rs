//! Lexicon documents: typed model, loader, schema checks, catalog and data validation.
