//! Inserting preemption checks: `::gort::preempt_point();` as the first
//! statement of the body of every `loop`, `while` and `for` in a function.
//!
//! At the start of the body rather than before the closing brace, so that
//! `continue` cannot skip it: every iteration runs the check exactly once,
//! which is what the back-edge check of Go's compiler guarantees. Nested
//! loops are instrumented too. The walk does not enter closures, `async`
//! blocks, nested items (`fn`, `impl`, `mod`, …), `const` blocks, array
//! lengths, types or macro invocations: a closure may run on another
//! goroutine or in a `const` context, and a macro's tokens are not Rust
//! syntax yet. Loops inside those need `#[gort::preemptible]` on the
//! function they live in, or a hand-placed `gort::preempt_point()`.

use proc_macro2::Span;
use syn::visit_mut::{self, VisitMut};
use syn::{parse_quote_spanned, Block, Expr, GenericArgument, Item, Stmt, Type};

/// Instruments every loop in `block`; returns how many it found.
pub(crate) fn instrument(block: &mut Block) -> usize {
    let mut v = InsertChecks { loops: 0 };
    v.visit_block_mut(block);
    v.loops
}

struct InsertChecks {
    loops: usize,
}

impl InsertChecks {
    fn check(&mut self, body: &mut Block, span: Span) {
        self.loops += 1;
        let stmt: Stmt = parse_quote_spanned!(span.resolved_at(Span::mixed_site())=> ::gort::preempt_point(););
        body.stmts.insert(0, stmt);
    }
}

impl VisitMut for InsertChecks {
    fn visit_expr_mut(&mut self, e: &mut Expr) {
        match e {
            Expr::Loop(l) => {
                visit_mut::visit_block_mut(self, &mut l.body);
                self.check(&mut l.body, l.loop_token.span);
            }
            Expr::While(w) => {
                self.visit_expr_mut(&mut w.cond);
                visit_mut::visit_block_mut(self, &mut w.body);
                self.check(&mut w.body, w.while_token.span);
            }
            Expr::ForLoop(f) => {
                self.visit_expr_mut(&mut f.expr);
                visit_mut::visit_block_mut(self, &mut f.body);
                self.check(&mut f.body, f.for_token.span);
            }
            Expr::Repeat(r) => self.visit_expr_mut(&mut r.expr),
            Expr::Closure(_) | Expr::Async(_) | Expr::Const(_) | Expr::Macro(_) => {}
            _ => visit_mut::visit_expr_mut(self, e),
        }
    }

    fn visit_item_mut(&mut self, _: &mut Item) {}
    fn visit_type_mut(&mut self, _: &mut Type) {}
    fn visit_generic_argument_mut(&mut self, _: &mut GenericArgument) {}
}
