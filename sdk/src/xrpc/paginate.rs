//! Cursor pagination as a `futures::Stream`.

use std::collections::HashSet;

use futures::StreamExt;
use futures::stream::{self, BoxStream};

use super::client::{CallOptions, Client};
use super::endpoint::Endpoint;
use super::failure::Error;

/// A query whose results come in pages linked by a `cursor`.
///
/// `cargo xtask codegen` implements it for every query with an optional `cursor` parameter, a
/// `cursor` in its output and exactly one array field in its output.
pub trait Paginated: Endpoint {
    /// One element of a page (the output's array field).
    type Item;

    /// The cursor of the next page; `None` on the last page.
    fn cursor(output: &Self::Output) -> Option<&str>;

    /// Sets the cursor parameter for the next request.
    fn set_cursor(params: &mut Self::Params, cursor: Option<String>);

    /// The page's items.
    fn into_items(output: Self::Output) -> Vec<Self::Item>;
}

/// The pages of a [`Paginated`] query.
pub type PageStream<E> =
    BoxStream<'static, Result<<E as Endpoint>::Output, Error<<E as Endpoint>::Error>>>;

/// The items of a [`Paginated`] query.
pub type ItemStream<E> =
    BoxStream<'static, Result<<E as Paginated>::Item, Error<<E as Endpoint>::Error>>>;

struct PageState<P> {
    client: Client,
    options: CallOptions,
    params: P,
    seen: HashSet<String>,
}

impl Client {
    /// Every page of the query `E`, starting from `params` (whose cursor, if set, is where the
    /// first page starts).
    ///
    /// The stream ends after the page without a cursor, or after a page whose cursor was
    /// already seen (a server that loops). An error is yielded and then ends the stream.
    pub fn pages<E>(&self, params: E::Params) -> PageStream<E>
    where
        E: Paginated + 'static,
        E::Params: Send + Sync + 'static,
        E::Input: Default + Send + Sync + 'static,
        E::Output: Send + 'static,
    {
        self.pages_with::<E>(params, CallOptions::default())
    }

    /// [`Client::pages`] with per-call options applied to every page request.
    pub fn pages_with<E>(&self, params: E::Params, options: CallOptions) -> PageStream<E>
    where
        E: Paginated + 'static,
        E::Params: Send + Sync + 'static,
        E::Input: Default + Send + Sync + 'static,
        E::Output: Send + 'static,
    {
        let state = PageState {
            client: self.clone(),
            options,
            params,
            seen: HashSet::new(),
        };
        stream::unfold(Some(state), |state| async move {
            let mut state = state?;
            let input = E::Input::default();
            match state
                .client
                .send::<E>(&state.params, &input, &state.options)
                .await
            {
                Ok(output) => {
                    let next = match E::cursor(&output) {
                        Some(cursor) if state.seen.insert(cursor.to_owned()) => {
                            Some(cursor.to_owned())
                        }
                        Some(_) | None => None,
                    };
                    match next {
                        Some(cursor) => {
                            E::set_cursor(&mut state.params, Some(cursor));
                            Some((Ok(output), Some(state)))
                        }
                        None => Some((Ok(output), None)),
                    }
                }
                Err(error) => Some((Err(error), None)),
            }
        })
        .boxed()
    }

    /// Every item of every page of the query `E`; see [`Client::pages`].
    pub fn paginate<E>(&self, params: E::Params) -> ItemStream<E>
    where
        E: Paginated + 'static,
        E::Params: Send + Sync + 'static,
        E::Input: Default + Send + Sync + 'static,
        E::Output: Send + 'static,
        E::Item: Send + 'static,
    {
        self.paginate_with::<E>(params, CallOptions::default())
    }

    /// [`Client::paginate`] with per-call options applied to every page request.
    pub fn paginate_with<E>(&self, params: E::Params, options: CallOptions) -> ItemStream<E>
    where
        E: Paginated + 'static,
        E::Params: Send + Sync + 'static,
        E::Input: Default + Send + Sync + 'static,
        E::Output: Send + 'static,
        E::Item: Send + 'static,
    {
        self.pages_with::<E>(params, options)
            .flat_map(|page| {
                let items: Vec<Result<E::Item, Error<E::Error>>> = match page {
                    Ok(output) => E::into_items(output).into_iter().map(Ok).collect(),
                    Err(error) => vec![Err(error)],
                };
                stream::iter(items)
            })
            .boxed()
    }
}
