//! `xp history list --query`: a JMESPath expression over the JSON list of runs, evaluated
//! without building that list when the expression allows it.
//!
//! Where the expression reads the list only through projections (`[?status=='Failed']`,
//! `[*].run_id`, `max_by([?...], &metrics.acc)`) or counts it (`length([?...])`,
//! `length(@)`), each projection is computed by streaming the runs one at a time, its filter's
//! plain comparisons (status, target, script, run configuration, run id, run number, exit
//! code, times) also pushed into the SQL query as a pre-filter, and the metrics fetched only
//! when the expression can see them; the projection's result then stands in for it as a
//! literal. Anything else reads the whole list, as before.

use std::ops::ControlFlow;
use std::rc::Rc;

use anyhow::Context;
use jmespath::ast::{Ast, Comparator};
use jmespath::{Rcvar, Variable};
use rusqlite::types::Value;

use crate::history::{Condition, HistoryStore, ListFilter};

/// Evaluates `query` over the runs `filter` lists.
pub fn evaluate(store: &HistoryStore, filter: &ListFilter, query: &str) -> anyhow::Result<Rcvar> {
    let ast = jmespath::parse(query).with_context(|| format!("--query {query}: not a JMESPath expression"))?;
    let runtime = &*jmespath::DEFAULT_RUNTIME;
    let mut context = jmespath::Context::new(query, runtime);
    let root = match rewrite(store, filter, &ast, query)? {
        Some(rewritten) => {
            // Nothing in it reads the root any more, but a multi-select of a null root is
            // null: any non-null root does.
            let result = jmespath::interpret(&Rc::new(Variable::Array(Vec::new())), &rewritten, &mut context);
            return result.with_context(|| format!("--query {query}: could not be applied"));
        }
        None => all_runs(store, filter)?,
    };
    jmespath::interpret(&root, &ast, &mut context).with_context(|| format!("--query {query}: could not be applied"))
}

/// Every listed run, with metrics, as one array (for expressions that need the whole list).
fn all_runs(store: &HistoryStore, filter: &ListFilter) -> anyhow::Result<Rcvar> {
    let mut runs = Vec::new();
    store
        .for_each_run(filter, &[], true, &mut |record| {
            runs.push(Rc::new(Variable::from_serializable(&record)?));
            Ok::<_, jmespath::JmespathError>(ControlFlow::Continue(()))
        })?
        .context("preparing runs for --query")?;
    Ok(Rc::new(Variable::Array(runs)))
}

/// How a part of the expression reads the list of runs.
enum Source<'a> {
    /// `[?...].rhs`: the non-null values of `rhs` over the runs; at most `limit` of them are
    /// needed.
    Projection { rhs: &'a Ast, limit: Option<usize> },
    /// `length([?...])` / `length(@)`: how many non-null values `rhs` gives.
    Count { rhs: Option<&'a Ast> },
}

/// The expression with each part that reads the runs replaced by its value, or None when the
/// expression reads the list in a way streaming cannot serve.
fn rewrite(store: &HistoryStore, filter: &ListFilter, ast: &Ast, query: &str) -> anyhow::Result<Option<Ast>> {
    let mentions_metrics = mentions_field(ast, "metrics");
    let mut error = None;
    let rewritten = replace(ast, true, &mut |source| {
        let metrics = match &source {
            Source::Count { rhs } => rhs.is_some_and(count_needs_metrics),
            Source::Projection { rhs, .. } => mentions_metrics || yields_records(rhs),
        };
        stream(store, filter, query, &source, metrics)
            .map_err(|e| error = Some(e))
            .ok()
    });
    match error {
        Some(error) => Err(error),
        None => Ok(rewritten),
    }
}

fn literal(value: Rcvar) -> Ast {
    Ast::Literal { offset: 0, value }
}

/// Rebuilds `ast`, handing each part that reads the runs (in root context) to `source`;
/// None when some part reads the runs otherwise.
fn replace(ast: &Ast, root: bool, source: &mut dyn FnMut(Source<'_>) -> Option<Rcvar>) -> Option<Ast> {
    let boxed = |node: Option<Ast>| node.map(Box::new);
    Some(match ast {
        Ast::Projection { lhs, rhs, offset } if root && matches!(**lhs, Ast::Identity { .. }) => {
            let _ = offset;
            literal(source(Source::Projection { rhs, limit: None })?)
        }
        Ast::Subexpr { lhs, rhs, offset } if root => {
            // `[?...] | [0]` and `[?...] | [:3]` need only the first matches.
            let limit = match &**rhs {
                Ast::Index { idx, .. } if *idx >= 0 => Some(*idx as usize + 1),
                Ast::Projection { lhs: slice, .. } => match &**slice {
                    Ast::Slice {
                        start,
                        stop: Some(stop),
                        step,
                        ..
                    } if *step > 0 && *stop >= 0 && start.is_none_or(|s| s >= 0) => Some(*stop as usize),
                    _ => None,
                },
                _ => None,
            };
            let new_lhs = match (&**lhs, limit) {
                (
                    Ast::Projection {
                        lhs: base, rhs: each, ..
                    },
                    Some(limit),
                ) if matches!(**base, Ast::Identity { .. }) => literal(source(Source::Projection {
                    rhs: each,
                    limit: Some(limit),
                })?),
                _ => replace(lhs, root, source)?,
            };
            Ast::Subexpr {
                offset: *offset,
                lhs: Box::new(new_lhs),
                rhs: rhs.clone(),
            }
        }
        Ast::Function { name, args, offset } if root && name == "length" && args.len() == 1 => match &args[0] {
            Ast::Identity { .. } => literal(source(Source::Count { rhs: None })?),
            Ast::Projection { lhs, rhs, .. } if matches!(**lhs, Ast::Identity { .. }) => {
                literal(source(Source::Count { rhs: Some(rhs) })?)
            }
            other => Ast::Function {
                offset: *offset,
                name: name.clone(),
                args: vec![replace(other, root, source)?],
            },
        },
        Ast::Identity { .. } | Ast::Field { .. } | Ast::Index { .. } | Ast::Slice { .. } if root => return None,
        Ast::Projection { lhs, rhs, offset } => Ast::Projection {
            offset: *offset,
            lhs: boxed(replace(lhs, root, source))?,
            rhs: rhs.clone(),
        },
        Ast::Subexpr { lhs, rhs, offset } => Ast::Subexpr {
            offset: *offset,
            lhs: boxed(replace(lhs, root, source))?,
            rhs: rhs.clone(),
        },
        Ast::Function { name, args, offset } => Ast::Function {
            offset: *offset,
            name: name.clone(),
            args: args
                .iter()
                .map(|arg| replace(arg, root, source))
                .collect::<Option<Vec<_>>>()?,
        },
        Ast::Comparison {
            comparator,
            lhs,
            rhs,
            offset,
        } => Ast::Comparison {
            offset: *offset,
            comparator: comparator.clone(),
            lhs: boxed(replace(lhs, root, source))?,
            rhs: boxed(replace(rhs, root, source))?,
        },
        Ast::Condition {
            predicate,
            then,
            offset,
        } => Ast::Condition {
            offset: *offset,
            predicate: boxed(replace(predicate, root, source))?,
            then: boxed(replace(then, root, source))?,
        },
        Ast::And { lhs, rhs, offset } => Ast::And {
            offset: *offset,
            lhs: boxed(replace(lhs, root, source))?,
            rhs: boxed(replace(rhs, root, source))?,
        },
        Ast::Or { lhs, rhs, offset } => Ast::Or {
            offset: *offset,
            lhs: boxed(replace(lhs, root, source))?,
            rhs: boxed(replace(rhs, root, source))?,
        },
        Ast::Not { node, offset } => Ast::Not {
            offset: *offset,
            node: boxed(replace(node, root, source))?,
        },
        Ast::Flatten { node, offset } => Ast::Flatten {
            offset: *offset,
            node: boxed(replace(node, root, source))?,
        },
        Ast::ObjectValues { node, offset } => Ast::ObjectValues {
            offset: *offset,
            node: boxed(replace(node, root, source))?,
        },
        Ast::MultiList { elements, offset } => Ast::MultiList {
            offset: *offset,
            elements: elements
                .iter()
                .map(|e| replace(e, root, source))
                .collect::<Option<Vec<_>>>()?,
        },
        Ast::MultiHash { elements, offset } => Ast::MultiHash {
            offset: *offset,
            elements: elements
                .iter()
                .map(|pair| {
                    Some(jmespath::ast::KeyValuePair {
                        key: pair.key.clone(),
                        value: replace(&pair.value, root, source)?,
                    })
                })
                .collect::<Option<Vec<_>>>()?,
        },
        // Expression references run on the elements a function hands them, never on the root.
        other => other.clone(),
    })
}

fn children(ast: &Ast) -> Vec<&Ast> {
    match ast {
        Ast::Comparison { lhs, rhs, .. }
        | Ast::And { lhs, rhs, .. }
        | Ast::Or { lhs, rhs, .. }
        | Ast::Projection { lhs, rhs, .. }
        | Ast::Subexpr { lhs, rhs, .. } => vec![lhs, rhs],
        Ast::Condition { predicate, then, .. } => vec![predicate, then],
        Ast::Expref { ast, .. } => vec![ast],
        Ast::Flatten { node, .. } | Ast::Not { node, .. } | Ast::ObjectValues { node, .. } => vec![node],
        Ast::Function { args, .. } => args.iter().collect(),
        Ast::MultiList { elements, .. } => elements.iter().collect(),
        Ast::MultiHash { elements, .. } => elements.iter().map(|pair| &pair.value).collect(),
        _ => Vec::new(),
    }
}

fn mentions_field(ast: &Ast, field: &str) -> bool {
    matches!(ast, Ast::Field { name, .. } if name == field)
        || children(ast).into_iter().any(|c| mentions_field(c, field))
}

/// Whether evaluating `ast` on a run can expose the whole record (so its metrics too).
fn yields_records(ast: &Ast) -> bool {
    matches!(ast, Ast::Identity { .. } | Ast::ObjectValues { .. }) || children(ast).into_iter().any(yields_records)
}

/// A count only sees whether each value is null; its filter may still read the metrics.
fn count_needs_metrics(rhs: &Ast) -> bool {
    match rhs {
        Ast::Condition { predicate, then, .. } => {
            mentions_field(rhs, "metrics")
                || yields_records(predicate)
                || !matches!(**then, Ast::Identity { .. }) && yields_records(then)
        }
        Ast::Identity { .. } => false,
        other => mentions_field(other, "metrics") || yields_records(other),
    }
}

/// Columns whose JSON value is the column's value, for the SQL pre-filter.
const TEXT_COLUMNS: [&str; 4] = ["target", "script", "runconfig", "run_id"];
const NUMBER_COLUMNS: [&str; 5] = ["run_number", "exit_code", "created_ms", "started_ms", "ended_ms"];

/// The plain comparisons of `predicate`'s top-level conjunction, as SQL conditions that every
/// matching run meets (a superset: the expression itself is still applied to each run).
fn pre_filter(predicate: &Ast, out: &mut Vec<Condition>) {
    match predicate {
        Ast::And { lhs, rhs, .. } => {
            pre_filter(lhs, out);
            pre_filter(rhs, out);
        }
        Ast::Comparison {
            comparator, lhs, rhs, ..
        } => {
            let (field, value, comparator) = match (&**lhs, &**rhs) {
                (Ast::Field { name, .. }, Ast::Literal { value, .. }) => (name, value, comparator.clone()),
                (Ast::Literal { value, .. }, Ast::Field { name, .. }) => (name, value, flipped(comparator)),
                _ => return,
            };
            if let Some(condition) = column_condition(field, value, &comparator) {
                out.push(condition);
            }
        }
        _ => {}
    }
}

fn flipped(comparator: &Comparator) -> Comparator {
    match comparator {
        Comparator::LessThan => Comparator::GreaterThan,
        Comparator::LessThanEqual => Comparator::GreaterThanEqual,
        Comparator::GreaterThan => Comparator::LessThan,
        Comparator::GreaterThanEqual => Comparator::LessThanEqual,
        other => other.clone(),
    }
}

fn column_condition(field: &str, value: &Variable, comparator: &Comparator) -> Option<Condition> {
    let condition = |sql: String, parameters: Vec<Value>| Some(Condition { sql, parameters });
    if field == "status" {
        let Variable::String(status) = value else { return None };
        if *comparator != Comparator::Equal {
            return None;
        }
        return match xp_plugin_api::RunStatus::parse(status).filter(|s| s.as_str() == status) {
            // A run whose driver vanished reads as Failed, and a status this xp does not know
            // as Failed too: keep every run not recorded as another final status.
            Some(xp_plugin_api::RunStatus::Failed) => {
                condition("status NOT IN ('Completed', 'Canceled')".into(), Vec::new())
            }
            Some(known) => condition("status = ?".into(), vec![Value::Text(known.as_str().into())]),
            None => condition("0".into(), Vec::new()),
        };
    }
    if TEXT_COLUMNS.contains(&field) {
        let Variable::String(text) = value else { return None };
        return match comparator {
            Comparator::Equal => condition(format!("{field} = ?"), vec![Value::Text(text.clone())]),
            _ => None,
        };
    }
    if NUMBER_COLUMNS.contains(&field) {
        let Variable::Number(number) = value else { return None };
        let number = number.as_f64()?;
        let operator = match comparator {
            Comparator::Equal => "=",
            Comparator::LessThan => "<",
            Comparator::LessThanEqual => "<=",
            Comparator::GreaterThan => ">",
            Comparator::GreaterThanEqual => ">=",
            Comparator::NotEqual => return None,
        };
        return condition(format!("{field} {operator} ?"), vec![Value::Real(number)]);
    }
    None
}

/// Streams the runs through `source`'s projection.
fn stream(
    store: &HistoryStore,
    filter: &ListFilter,
    query: &str,
    source: &Source<'_>,
    metrics: bool,
) -> anyhow::Result<Rcvar> {
    let (rhs, limit) = match source {
        Source::Projection { rhs, limit } => (Some(*rhs), *limit),
        Source::Count { rhs } => (*rhs, None),
    };
    let mut conditions = Vec::new();
    if let Some(Ast::Condition { predicate, .. }) = rhs {
        pre_filter(predicate, &mut conditions);
    }
    let runtime = &*jmespath::DEFAULT_RUNTIME;
    let mut context = jmespath::Context::new(query, runtime);
    let mut values = Vec::new();
    let mut count = 0u64;
    let counting = matches!(source, Source::Count { .. });
    store
        .for_each_run(filter, &conditions, metrics, &mut |record| {
            let Some(rhs) = rhs else {
                count += 1;
                return Ok(ControlFlow::Continue(()));
            };
            let run = Rc::new(Variable::from_serializable(&record)?);
            let value = jmespath::interpret(&run, rhs, &mut context)?;
            if !value.is_null() {
                if counting {
                    count += 1;
                } else {
                    values.push(value);
                }
            }
            Ok::<_, jmespath::JmespathError>(if limit.is_some_and(|limit| values.len() >= limit) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            })
        })?
        .with_context(|| format!("--query {query}: could not be applied"))?;
    Ok(Rc::new(if counting {
        Variable::Number(serde_json::Number::from(count))
    } else {
        Variable::Array(values)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::NewRun;
    use xp_plugin_api::RunStatus;

    /// A small history with every status, two targets, metrics, and a run whose driver died.
    fn seeded() -> (tempfile::TempDir, HistoryStore) {
        let dir = tempfile::tempdir().unwrap();
        let mut store = HistoryStore::open(dir.path()).unwrap();
        let statuses = [
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Completed,
            RunStatus::Canceled,
            RunStatus::Running,
            RunStatus::Completed,
        ];
        for i in 0..30u64 {
            let arguments = vec![format!("--seed={i}")];
            let record = store
                .create_run(&NewRun {
                    id_prefix: "p",
                    script: if i % 3 == 0 { "train.py" } else { "eval.py" },
                    arguments: &arguments,
                    target: if i % 2 == 0 { "local" } else { "docker" },
                    runconfig: "local",
                    git_commit: None,
                })
                .unwrap();
            let status = statuses[i as usize % statuses.len()];
            if status.is_final() {
                let code = (status == RunStatus::Failed).then_some(1).or(Some(0));
                store.finish(record.run_number, status, code, None, &[]).unwrap();
            } else {
                store.set_status(record.run_number, status).unwrap();
            }
            if i == 10 {
                // Its driver is gone: it reads as Failed.
                store.set_status(record.run_number, RunStatus::Running).unwrap();
                store.set_driver(record.run_number, u32::MAX - 1, Some(1)).unwrap();
            }
            for step in 0..(i % 4) {
                let value = serde_json::json!(i as f64 / 10.0 + step as f64);
                store.add_metric(record.run_number, "acc", step, &value).unwrap();
            }
        }
        (dir, store)
    }

    /// The whole list, then the expression: what `--query` did before it streamed.
    fn naive(store: &HistoryStore, filter: &ListFilter, query: &str) -> Option<Rcvar> {
        let mut records = store.list(filter).unwrap();
        store.fill_last_metrics(&mut records).unwrap();
        let runs = records
            .iter()
            .map(|r| Rc::new(Variable::from_serializable(r).unwrap()))
            .collect();
        jmespath::compile(query).unwrap().search(Variable::Array(runs)).ok()
    }

    #[test]
    fn streamed_queries_give_what_the_whole_list_gives() {
        let (_dir, store) = seeded();
        let queries = [
            "length([?status=='Failed'])",
            "length([?status=='Completed' && target=='docker'])",
            "length(@)",
            "[?status=='Failed'].run_id",
            "[?status=='Running'].run_number",
            "[?target=='local' && run_number > `10`].[run_number, script]",
            "max_by([?status=='Completed'], &metrics.acc).run_id",
            "max_by([?status=='Completed' && metrics.acc], &metrics.acc).run_id",
            "[?script=='train.py'] | [0]",
            "[?exit_code==`1`] | [:2]",
            "[*].metrics.acc",
            "sort_by([?status!='Completed'], &run_number)[].run_number",
            "[0].run_id",
            "length([?metrics.acc > `1.5`])",
            "{failed: length([?status=='Failed']), all: length(@), first: [?status=='Completed'] | [0].run_number}",
            "[?`5` < run_number && status=='Canceled'].run_id",
            "[?status=='Nonsense']",
            "length([?contains(keys(@), 'metrics')])",
        ];
        for limit in [usize::MAX >> 1, 7] {
            for target in [None, Some("docker".to_owned())] {
                let filter = ListFilter {
                    status: None,
                    target: target.clone(),
                    limit,
                    before: None,
                };
                for query in queries {
                    let expected = naive(&store, &filter, query);
                    assert!(
                        expected.is_some() || query.starts_with("max_by([?status=='Completed'],"),
                        "{query} works on the whole list"
                    );
                    assert_eq!(
                        evaluate(&store, &filter, query).ok(),
                        expected,
                        "{query} (limit {limit}, target {target:?})"
                    );
                }
            }
        }
    }

    #[test]
    fn plain_comparisons_become_sql_and_the_rest_stays_in_the_expression() {
        let ast =
            jmespath::parse("[?status=='Failed' && target=='gpu' && `3` <= run_number && metrics.a > `1`]").unwrap();
        let Ast::Projection { rhs, .. } = ast else { panic!() };
        let Ast::Condition { predicate, .. } = *rhs else {
            panic!()
        };
        let mut conditions = Vec::new();
        pre_filter(&predicate, &mut conditions);
        let sql: Vec<&str> = conditions.iter().map(|c| c.sql.as_str()).collect();
        assert_eq!(
            sql,
            [
                "status NOT IN ('Completed', 'Canceled')",
                "target = ?",
                "run_number >= ?"
            ]
        );
    }

    #[test]
    fn a_bad_expression_names_the_query() {
        let (_dir, store) = seeded();
        let filter = ListFilter {
            limit: 10,
            ..ListFilter::default()
        };
        let error = evaluate(&store, &filter, "[?status==").unwrap_err();
        assert!(format!("{error:#}").contains("--query [?status=="), "{error:#}");
    }
}
