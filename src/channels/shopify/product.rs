//! `products/create` and `products/update`: one canonical product per variant that has a SKU.
//!
//! Orders and refunds name a variant by its SKU, so the product register is keyed the same way.
//! A variant without a SKU cannot be looked up by anything we post and is left out; a product
//! with no SKU at all is recorded as ignored. The name is the product's title, plus the
//! variant's title unless it is Shopify's placeholder "Default Title". Shopify products carry no
//! VAT rate, so `vat_rate` stays unset; the price is the variant's price in shop money.

use crate::channels::AdapterError;
use crate::channels::json::{Node, Obj};
use crate::posting::event::{Event, Product};

/// Reads a product payload into one event per variant with a SKU.
pub(super) fn parse(p: &Obj<'_>, topic: &str) -> Result<Vec<Event>, AdapterError> {
    let title = p.req_as("title", Node::text_nonempty)?;
    let group = p.opt_text("product_type")?;
    let mut events = Vec::new();
    for n in p.list("variants")? {
        let v = n.object()?;
        let Some(sku) = v.opt_text("sku")? else {
            continue;
        };
        let name = match v.opt_text("title")? {
            Some(variant) if variant != "Default Title" => format!("{title} - {variant}"),
            _ => title.clone(),
        };
        events.push(Event::Product(Product {
            sku,
            name,
            price: v.opt("price", Node::price_text)?,
            vat_rate: None,
            product_group: group.clone(),
        }));
    }
    if events.is_empty() {
        events.push(Event::Ignored {
            topic: topic.to_owned(),
        });
    }
    Ok(events)
}
