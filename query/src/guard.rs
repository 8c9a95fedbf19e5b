//! The read-only guard: a request runs exactly one read statement (SELECT, WITH, VALUES, EXPLAIN, SHOW,
//! DESCRIBE). Everything else is refused before planning, with the reason. DataFusion's own `SQLOptions`
//! (no DDL, no DML, no SET) stay on as a second wall behind this one.

use datafusion::sql::parser::{DFParser, Statement as DfStatement};
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GuardError {
    #[error("SQL syntax error: {0}")]
    Syntax(String),
    #[error("empty query: send one SELECT statement")]
    Empty,
    #[error("only one statement per request is allowed; found {0}")]
    MultipleStatements(usize),
    #[error("only read statements (SELECT, WITH, EXPLAIN, SHOW, DESCRIBE) are allowed; {0} is not")]
    NotReadOnly(String),
}

/// Checks that `sql` is exactly one read statement.
pub fn check_read_only(sql: &str) -> Result<(), GuardError> {
    let statements = DFParser::parse_sql(sql).map_err(|e| GuardError::Syntax(e.to_string()))?;
    match statements.len() {
        0 => Err(GuardError::Empty),
        1 => check_statement(&statements[0]),
        n => Err(GuardError::MultipleStatements(n)),
    }
}

fn check_statement(statement: &DfStatement) -> Result<(), GuardError> {
    match statement {
        DfStatement::Statement(s) => check_sql_statement(s),
        DfStatement::Explain(e) => check_statement(&e.statement),
        DfStatement::CreateExternalTable(_) => {
            Err(GuardError::NotReadOnly("CREATE EXTERNAL TABLE".into()))
        }
        DfStatement::CopyTo(_) => Err(GuardError::NotReadOnly("COPY".into())),
        DfStatement::Reset(_) => Err(GuardError::NotReadOnly("RESET".into())),
    }
}

fn check_sql_statement(statement: &SqlStatement) -> Result<(), GuardError> {
    match statement {
        SqlStatement::Query(_)
        | SqlStatement::ShowTables { .. }
        | SqlStatement::ShowColumns { .. }
        | SqlStatement::ShowFunctions { .. }
        | SqlStatement::ExplainTable { .. } => Ok(()),
        SqlStatement::Explain { statement, .. } => check_sql_statement(statement),
        other => Err(GuardError::NotReadOnly(statement_kind(other))),
    }
}

/// The leading keywords of a statement, for the error message ("CREATE TABLE", "SET", ...).
fn statement_kind(statement: &SqlStatement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(3).collect();
    let keywords: Vec<&str> = words
        .iter()
        .take_while(|w| w.chars().all(|c| c.is_ascii_alphabetic() || c == '_'))
        .copied()
        .collect();
    match keywords.len() {
        0 => "this statement".into(),
        1 => keywords[0].to_ascii_uppercase(),
        _ => keywords[..2].join(" ").to_ascii_uppercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_pass() {
        for sql in [
            "SELECT 1",
            "WITH a AS (SELECT 1) SELECT * FROM a",
            "EXPLAIN SELECT count(*) FROM spans",
            "EXPLAIN ANALYZE SELECT 1",
            "SHOW TABLES",
            "SHOW COLUMNS FROM spans",
            "DESCRIBE spans",
            "VALUES (1)",
            "SELECT 1;",
        ] {
            assert_eq!(check_read_only(sql), Ok(()), "{sql}");
        }
    }

    #[test]
    fn writes_and_tricks_fail_with_a_reason() {
        let cases = [
            ("DROP TABLE spans", "DROP TABLE"),
            ("CREATE TABLE t AS SELECT 1", "CREATE TABLE"),
            ("INSERT INTO spans SELECT * FROM spans", "INSERT INTO"),
            ("DELETE FROM spans", "DELETE FROM"),
            ("SET datafusion.execution.batch_size = 1", "SET"),
            (
                "CREATE EXTERNAL TABLE x STORED AS CSV LOCATION '/etc/passwd'",
                "CREATE EXTERNAL TABLE",
            ),
            ("COPY (SELECT 1) TO '/tmp/x.csv'", "COPY"),
            ("EXPLAIN DROP TABLE spans", "DROP TABLE"),
        ];
        for (sql, kind) in cases {
            let err = check_read_only(sql).unwrap_err();
            assert_eq!(err, GuardError::NotReadOnly(kind.into()), "{sql}");
            assert!(err.to_string().contains("only read statements"));
        }
        assert_eq!(
            check_read_only("SELECT 1; SELECT 2"),
            Err(GuardError::MultipleStatements(2))
        );
        assert_eq!(check_read_only("  "), Err(GuardError::Empty));
        assert!(matches!(
            check_read_only("SELEC 1"),
            Err(GuardError::Syntax(_))
        ));
    }
}
