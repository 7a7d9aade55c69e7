//! The small CSV subset the dataset metadata files use: a header line, comma-separated fields,
//! RFC 4180 quoting (`"a, b"`, `""` for a quote), LF or CRLF line ends, an optional UTF-8 BOM.
//!
//! Columns are found by header name, so extra or reordered columns are fine; every error names
//! the file and the 1-based line.

use std::path::Path;
use std::str::FromStr;

use super::DataError;

/// A CSV file read into rows of fields.
#[derive(Debug)]
pub(crate) struct Table {
    path: String,
    header: Vec<String>,
    /// `(1-based line number, fields)` of every non-blank data line.
    rows: Vec<(usize, Vec<String>)>,
}

/// One data row with the column indices it is read by.
pub(crate) struct Row<'a> {
    table: &'a Table,
    line: usize,
    fields: &'a [String],
}

impl Table {
    /// Reads `path`; `what` says in errors which dataset file it should be.
    pub(crate) fn read(path: &Path, what: &str) -> Result<Self, DataError> {
        let text = std::fs::read_to_string(path).map_err(|e| DataError::Io {
            path: path.display().to_string(),
            message: format!("cannot read {what}: {e}"),
        })?;
        Self::parse(&text, &path.display().to_string())
    }

    /// Parses CSV text; `path` names it in errors.
    pub(crate) fn parse(text: &str, path: &str) -> Result<Self, DataError> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut lines = split_records(text, path)?.into_iter();
        let Some((_, header)) = lines.next() else {
            return Err(DataError::Layout {
                path: path.to_string(),
                message: "the file is empty; expected a header line".into(),
            });
        };
        let header: Vec<String> = header.into_iter().map(|h| h.trim().to_string()).collect();
        let mut rows = Vec::new();
        for (line, fields) in lines {
            if fields.len() == 1 && fields[0].trim().is_empty() {
                continue;
            }
            if fields.len() != header.len() {
                return Err(DataError::Row {
                    path: path.to_string(),
                    line,
                    message: format!(
                        "{} field(s), but the header has {} ({})",
                        fields.len(),
                        header.len(),
                        header.join(",")
                    ),
                });
            }
            rows.push((line, fields));
        }
        Ok(Table {
            path: path.to_string(),
            header,
            rows,
        })
    }

    /// Index of each named column, or an error listing the header.
    pub(crate) fn columns<const N: usize>(
        &self,
        names: [&str; N],
    ) -> Result<[usize; N], DataError> {
        let mut out = [0; N];
        for (slot, name) in out.iter_mut().zip(names) {
            *slot = self
                .header
                .iter()
                .position(|h| h == name)
                .ok_or_else(|| DataError::Row {
                    path: self.path.clone(),
                    line: 1,
                    message: format!(
                        "no `{name}` column in the header ({})",
                        self.header.join(",")
                    ),
                })?;
        }
        Ok(out)
    }

    /// The data rows in file order.
    pub(crate) fn rows(&self) -> impl Iterator<Item = Row<'_>> {
        self.rows.iter().map(|(line, fields)| Row {
            table: self,
            line: *line,
            fields,
        })
    }

    /// The file path as given.
    pub(crate) fn path(&self) -> &str {
        &self.path
    }
}

impl Row<'_> {
    /// The 1-based line number.
    pub(crate) fn line(&self) -> usize {
        self.line
    }

    /// Field `column` as text.
    pub(crate) fn text(&self, column: usize) -> &str {
        &self.fields[column]
    }

    /// Field `column` parsed as a number, or an error naming the line, column and value.
    pub(crate) fn number<T: FromStr>(&self, column: usize) -> Result<T, DataError> {
        let value = self.fields[column].trim();
        value.parse().map_err(|_| {
            self.error(format!(
                "column `{}`: `{value}` is not a whole number",
                self.table.header[column],
            ))
        })
    }

    /// An error about this line.
    pub(crate) fn error(&self, message: String) -> DataError {
        DataError::Row {
            path: self.table.path.clone(),
            line: self.line,
            message,
        }
    }
}

/// Splits text into records of fields, honouring quotes (which may span lines).
fn split_records(text: &str, path: &str) -> Result<Vec<(usize, Vec<String>)>, DataError> {
    let mut records = Vec::new();
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut line = 1;
    let mut start = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted => {
                if chars.peek() == Some(&'"') {
                    chars.next();
                    field.push('"');
                } else {
                    quoted = false;
                }
            }
            '"' if field.is_empty() => quoted = true,
            '\n' if !quoted => {
                if field.ends_with('\r') {
                    field.pop();
                }
                fields.push(std::mem::take(&mut field));
                records.push((start, std::mem::take(&mut fields)));
                line += 1;
                start = line;
            }
            ',' if !quoted => fields.push(std::mem::take(&mut field)),
            c => {
                if c == '\n' {
                    line += 1;
                }
                field.push(c);
            }
        }
    }
    if quoted {
        return Err(DataError::Row {
            path: path.to_string(),
            line: start,
            message: "a quoted field is never closed".into(),
        });
    }
    if !field.is_empty() || !fields.is_empty() {
        if field.ends_with('\r') {
            field.pop();
        }
        fields.push(field);
        records.push((start, fields));
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_quotes_crlf_bom_and_blank_lines() {
        let text = "\u{feff}a,b,c\r\n1,\"x, \"\"y\"\"\",3\r\n\r\n4,\"multi\nline\",6\n7,8,9";
        let t = Table::parse(text, "t.csv").unwrap();
        let [a, b, c] = t.columns(["a", "b", "c"]).unwrap();
        let rows: Vec<_> = t.rows().collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].text(b), "x, \"y\"");
        assert_eq!(rows[0].number::<u32>(c).unwrap(), 3);
        assert_eq!(rows[1].text(b), "multi\nline");
        assert_eq!(rows[2].line(), 6);
        assert_eq!(rows[2].number::<u32>(a).unwrap(), 7);
    }

    #[test]
    fn errors_name_the_file_and_line() {
        let err = Table::parse("a,b\n1,2\n3\n", "m.csv").unwrap_err();
        assert!(err.to_string().starts_with("m.csv:3:"), "{err}");
        let t = Table::parse("a,b\n1,x\n", "m.csv").unwrap();
        let err = t.columns(["c"]).unwrap_err();
        assert!(err.to_string().contains("no `c` column"), "{err}");
        let row = t.rows().next().unwrap();
        let err = row.number::<usize>(1).unwrap_err();
        assert!(
            err.to_string().starts_with("m.csv:2: column `b`: `x`"),
            "{err}"
        );
        let err = Table::parse("a\n\"open\n", "q.csv").unwrap_err();
        assert!(err.to_string().contains("q.csv:2"), "{err}");
    }
}
