//! Talos's "transform" controllers: one resource derived from the machine config (plus a few
//! other inputs), destroyed when the config no longer yields it (no cluster section, not a
//! control plane, …).

use std::marker::PhantomData;

use talos::config::kubernetes::KubernetesView;
use talos::resources::controller::{Action, Context, Controller, ControllerError, Input};
use talos::resources::specs::{MachineConfigSpec, MACHINE_CONFIG_ID};
use talos::resources::ResourceSpec;

use crate::init::controllers::current_config;

/// Builds the output from the config view and the state: `Ok(None)` means "no such resource
/// for this config".
pub type RenderFn<T> = fn(&KubernetesView<'_>, &Context) -> Result<Option<T>, ControllerError>;

/// A controller that maps the machine config to one resource `id` of type `T`.
pub struct Transform<T> {
    name: &'static str,
    id: &'static str,
    render: RenderFn<T>,
    extra: Vec<Input>,
    _spec: PhantomData<fn() -> T>,
}

impl<T: ResourceSpec> Transform<T> {
    /// A transform named `name` writing `T/id`.
    pub fn new(name: &'static str, id: &'static str, render: RenderFn<T>) -> Self {
        Transform {
            name,
            id,
            render,
            extra: Vec::new(),
            _spec: PhantomData,
        }
    }

    /// Also reconciles when `input` changes.
    pub fn with_input(mut self, input: Input) -> Self {
        self.extra.push(input);
        self
    }
}

impl<T: ResourceSpec> Controller for Transform<T> {
    fn name(&self) -> &'static str {
        self.name
    }

    fn inputs(&self) -> Vec<Input> {
        let mut inputs = vec![Input::one::<MachineConfigSpec>(MACHINE_CONFIG_ID)];
        inputs.extend(self.extra.iter().cloned());
        inputs
    }

    fn outputs(&self) -> Vec<&'static str> {
        vec![T::TYPE]
    }

    async fn reconcile(&mut self, ctx: &Context) -> Result<Action, ControllerError> {
        let config = current_config(ctx.state());
        let view = config
            .as_ref()
            .and_then(|c| c.v1alpha1())
            .and_then(KubernetesView::of);
        let output = match view {
            Some(view) => (self.render)(&view, ctx)?,
            None => None,
        };
        match output {
            Some(spec) => {
                ctx.put_typed(self.id, &spec)?;
            }
            None => ctx.destroy(T::NAMESPACE, T::TYPE, self.id)?,
        }
        Ok(Action::AwaitChange)
    }
}
