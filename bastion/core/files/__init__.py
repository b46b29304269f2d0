"""Files of records: uploads, stored names, the storage lifecycle, downloads and thumbs."""
