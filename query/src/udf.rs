//! `quantile_cont(x, q)`: the exact continuous quantile, interpolated the way DuckDB's `quantile_cont` and
//! numpy's default do (`lo + (hi - lo) * (pos - floor(pos))` with `pos = q * (n - 1)`).
//!
//! Written here because DataFusion's `percentile_cont` quantises the interpolation weight to six decimals,
//! which moves results by up to 1e-6 of the gap between neighbours — Lumen promises percentiles equal to
//! DuckDB's on the same data.

use std::sync::Arc;

use arrow::array::{ArrayRef, AsArray, Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Schema};
use datafusion::common::utils::SingleRowListArrayBuilder;
use datafusion::common::{Result, ScalarValue, exec_err, plan_err};
use datafusion::logical_expr::function::{AccumulatorArgs, StateFieldsArgs};
use datafusion::logical_expr::{
    Accumulator, AggregateUDF, AggregateUDFImpl, ColumnarValue, Signature, Volatility,
};

#[derive(Debug, PartialEq, Eq, Hash)]
pub struct QuantileCont {
    signature: Signature,
}

pub fn quantile_cont() -> AggregateUDF {
    AggregateUDF::from(QuantileCont {
        signature: Signature::user_defined(Volatility::Immutable),
    })
}

impl AggregateUDFImpl for QuantileCont {
    fn name(&self) -> &str {
        "quantile_cont"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        match arg_types {
            [x, q] if x.is_numeric() && q.is_numeric() => {
                Ok(vec![DataType::Float64, DataType::Float64])
            }
            [DataType::Null, q] if q.is_numeric() => Ok(vec![DataType::Float64, DataType::Float64]),
            _ => plan_err!("quantile_cont(value, quantile) takes two numbers, got {arg_types:?}"),
        }
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok(DataType::Float64)
    }

    fn state_fields(&self, args: StateFieldsArgs) -> Result<Vec<FieldRef>> {
        let item = Arc::new(Field::new("item", DataType::Float64, true));
        Ok(vec![Arc::new(Field::new(
            format!("{}_values", args.name),
            DataType::List(item),
            true,
        ))])
    }

    fn accumulator(&self, args: AccumulatorArgs) -> Result<Box<dyn Accumulator>> {
        let Some(q_expr) = args.exprs.get(1) else {
            return plan_err!("quantile_cont(value, quantile) needs a quantile");
        };
        let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
        let q = match q_expr.evaluate(&empty)? {
            ColumnarValue::Scalar(ScalarValue::Float64(Some(q))) if (0.0..=1.0).contains(&q) => q,
            ColumnarValue::Scalar(other) => {
                return plan_err!("quantile_cont: the quantile must be in [0, 1], got {other}");
            }
            ColumnarValue::Array(_) => {
                return plan_err!("quantile_cont: the quantile must be a constant");
            }
        };
        Ok(Box::new(QuantileAccumulator {
            q,
            values: Vec::new(),
        }))
    }
}

#[derive(Debug)]
struct QuantileAccumulator {
    q: f64,
    values: Vec<f64>,
}

impl Accumulator for QuantileAccumulator {
    fn update_batch(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(array) = values
            .first()
            .and_then(|a| a.as_primitive_opt::<Float64Type>())
        else {
            return exec_err!("quantile_cont: expected Float64 input");
        };
        self.values.extend(array.iter().flatten());
        Ok(())
    }

    fn merge_batch(&mut self, states: &[ArrayRef]) -> Result<()> {
        let Some(lists) = states.first().and_then(|a| a.as_list_opt::<i32>()) else {
            return exec_err!("quantile_cont: expected a list state");
        };
        for list in lists.iter().flatten() {
            if let Some(values) = list.as_primitive_opt::<Float64Type>() {
                self.values.extend(values.iter().flatten());
            }
        }
        Ok(())
    }

    fn state(&mut self) -> Result<Vec<ScalarValue>> {
        // The values as one Float64 array (a copy of the Vec), not a `ScalarValue` per value: with
        // millions of values per group that conversion was the largest cost of a quantile query.
        let values: ArrayRef = Arc::new(Float64Array::from(self.values.clone()));
        Ok(vec![
            SingleRowListArrayBuilder::new(values)
                .with_nullable(true)
                .build_list_scalar(),
        ])
    }

    fn evaluate(&mut self) -> Result<ScalarValue> {
        Ok(ScalarValue::Float64(exact_quantile(
            &mut self.values,
            self.q,
        )))
    }

    fn size(&self) -> usize {
        std::mem::size_of_val(self) + self.values.capacity() * std::mem::size_of::<f64>()
    }
}

/// The interpolated quantile of `values` (reordered in place); `None` when empty.
pub fn exact_quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let pos = q * (values.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let (_, lo_value, upper) = values.select_nth_unstable_by(lo, f64::total_cmp);
    let lo_value = *lo_value;
    if hi == lo {
        return Some(lo_value);
    }
    // The next value up is the smallest of the upper partition.
    let hi_value = upper
        .iter()
        .copied()
        .min_by(f64::total_cmp)
        .unwrap_or(lo_value);
    Some(lo_value + (hi_value - lo_value) * (pos - lo as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interpolates_like_duckdb() {
        let mut v: Vec<f64> = vec![4.0, 1.0, 3.0, 2.0];
        assert_eq!(exact_quantile(&mut v, 0.5), Some(2.5));
        assert_eq!(exact_quantile(&mut v, 1.0), Some(4.0));
        assert_eq!(exact_quantile(&mut v, 0.0), Some(1.0));
        assert_eq!(exact_quantile(&mut [], 0.5), None);
        // pos = 0.99 * 599 = 593.01: no quantisation of the weight.
        let mut v: Vec<f64> = (0..600).map(|i| i as f64 * 10.0).collect();
        let got = exact_quantile(&mut v, 0.99).unwrap();
        assert_eq!(got, 5930.0 + 10.0 * (0.99 * 599.0 - 593.0));
    }

    /// Partial aggregates meet through `state` and `merge_batch` (one per partition, then the final).
    #[test]
    fn partial_states_merge_into_the_exact_quantile() -> Result<()> {
        let accumulator = |q| QuantileAccumulator {
            q,
            values: Vec::new(),
        };
        let (mut left, mut right, mut last) =
            (accumulator(0.9), accumulator(0.9), accumulator(0.9));
        let column = |v: Vec<Option<f64>>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
        left.update_batch(&[column((1..=50).map(|i| Some(i as f64)).collect())])?;
        right.update_batch(&[column(vec![None, Some(100.0), Some(51.0)])])?;
        right.update_batch(&[column((52..=99).map(|i| Some(i as f64)).collect())])?;
        for partial in [&mut left, &mut right] {
            let states: Vec<ArrayRef> = partial
                .state()?
                .into_iter()
                .map(|s| s.to_array())
                .collect::<Result<_>>()?;
            last.merge_batch(&states)?;
        }
        let mut all: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(
            last.evaluate()?,
            ScalarValue::Float64(exact_quantile(&mut all, 0.9))
        );
        let ScalarValue::Float64(Some(p90)) = last.evaluate()? else {
            panic!("quantile_cont of 100 values is a number");
        };
        assert!((p90 - 90.1).abs() < 1e-9, "{p90}");
        Ok(())
    }
}
