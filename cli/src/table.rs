//! Plain-text tables for people: padded columns, numbers right-aligned, one line per
//! row. Long text is cut with '…' so a row never wraps; scripts use `--json`, which is
//! never cut.

/// How wide a column may grow before its cells are cut, and from which end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Clip {
    None,
    /// Keep the start: reasons and messages read from the left.
    End(usize),
    /// Keep the end: in a path the file name says the most.
    Start(usize),
}

/// One column: its header, alignment and width limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Column {
    header: &'static str,
    right: bool,
    clip: Clip,
}

impl Column {
    /// A left-aligned text column.
    pub fn text(header: &'static str) -> Self {
        Self {
            header,
            right: false,
            clip: Clip::None,
        }
    }

    /// A right-aligned column, so digits line up.
    pub fn number(header: &'static str) -> Self {
        Self {
            right: true,
            ..Self::text(header)
        }
    }

    /// Cuts cells longer than `width` characters at the end.
    pub fn max(self, width: usize) -> Self {
        Self {
            clip: Clip::End(width),
            ..self
        }
    }

    /// Cuts cells longer than `width` characters at the start.
    pub fn max_keep_end(self, width: usize) -> Self {
        Self {
            clip: Clip::Start(width),
            ..self
        }
    }

    fn fit(&self, cell: &str) -> String {
        let line = one_line(cell);
        let len = line.chars().count();
        match self.clip {
            Clip::End(max) if len > max => {
                let kept: String = line.chars().take(max.saturating_sub(1)).collect();
                format!("{kept}…")
            }
            Clip::Start(max) if len > max => {
                let kept: String = line.chars().skip(len + 1 - max.max(1)).collect();
                format!("…{kept}")
            }
            _ => line,
        }
    }
}

/// Control characters shown as escapes, so a raw record with a newline in it stays on
/// its row.
fn one_line(cell: &str) -> String {
    if !cell.chars().any(char::is_control) {
        return cell.to_owned();
    }
    cell.chars()
        .map(|c| match c {
            c if c.is_control() => c.escape_default().to_string(),
            c => c.to_string(),
        })
        .collect()
}

/// A table being filled row by row, rendered once every width is known.
#[derive(Debug, Clone, Default)]
pub struct Table {
    columns: Vec<Column>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new(columns: &[Column]) -> Self {
        Self {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    /// Adds a row, one cell per column; missing cells are empty, extra ones ignored.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let cells = cells.into_iter().map(|c| c.as_ref().to_owned());
        let fitted = self.columns.iter().zip(cells).map(|(c, cell)| c.fit(&cell));
        self.rows.push(fitted.collect());
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// The header line, then one line per row; columns two spaces apart, no trailing
    /// blanks.
    pub fn lines(&self) -> Vec<String> {
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let cells = self.rows.iter().filter_map(|r| r.get(i));
                cells
                    .map(|s| s.chars().count())
                    .fold(c.header.chars().count(), usize::max)
            })
            .collect();
        let header: Vec<&str> = self.columns.iter().map(|c| c.header).collect();
        let mut lines = vec![self.line(&header, &widths)];
        for row in &self.rows {
            let cells: Vec<&str> = (0..self.columns.len())
                .map(|i| row.get(i).map_or("", String::as_str))
                .collect();
            lines.push(self.line(&cells, &widths));
        }
        lines
    }

    fn line(&self, cells: &[&str], widths: &[usize]) -> String {
        let padded: Vec<String> = self
            .columns
            .iter()
            .zip(cells.iter().zip(widths))
            .map(|(c, (cell, &width))| match c.right {
                true => format!("{cell:>width$}"),
                false => format!("{cell:<width$}"),
            })
            .collect();
        padded.join("  ").trim_end().to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_columns_and_right_aligns_numbers() {
        let mut table = Table::new(&[Column::number("ID"), Column::text("NAME")]);
        table.row(["7", "orders"]);
        table.row(["123", "x"]);
        assert_eq!(table.lines(), [" ID  NAME", "  7  orders", "123  x"]);
    }

    #[test]
    fn cuts_long_cells_with_an_ellipsis_from_either_end() {
        let mut table = Table::new(&[
            Column::text("REASON").max(8),
            Column::text("SOURCE").max_keep_end(8),
        ]);
        table.row(["expected 2 fields", "/tmp/dir/orders.csv"]);
        table.row(["short", "a.csv"]);
        assert_eq!(
            table.lines(),
            ["REASON    SOURCE", "expecte…  …ers.csv", "short     a.csv"]
        );
    }

    #[test]
    fn control_characters_stay_on_the_row() {
        let mut table = Table::new(&[Column::text("RAW")]);
        table.row(["a\nb\tc"]);
        assert_eq!(table.lines()[1], "a\\nb\\tc");
    }

    #[test]
    fn counts_characters_not_bytes() {
        let mut table = Table::new(&[Column::text("A"), Column::text("B")]);
        table.row(["café", "x"]);
        table.row(["→", "y"]);
        assert_eq!(table.lines(), ["A     B", "café  x", "→     y"]);
    }
}
