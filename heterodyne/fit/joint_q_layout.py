"""Parameter layout of the joint multi-q fit: which joint entry each q bin's free parameter is.

The transport and velocity parameters (D0_ref, alpha_ref, D_offset_ref, D0_sample, alpha_sample,
D_offset_sample, v0, beta, v_offset, phi0) are properties of the sample, the same at every q
(q enters the decay as q^2 J and the phase as q cos(phi + phi0) v); the sample fraction f0..f3
(the components' structure factors) may differ between q bins. With the nlsq section's free
parameters ``local`` (canonical order, the same list for every bin), the joint vector is

    x = [shared free parameters (canonical order), free fractions of bin 0, of bin 1, ...]

named ``name`` for a shared parameter and ``name@folder`` for bin ``folder``'s fraction (e.g.
``f0@q0.005``). ``index[b]`` (n_local,) gives, for each of bin b's local free parameters, its
position in x, so bin b's local free vector is x[index[b]] and its 14-vector is
``template.at[free].set(x[index[b]])``.
"""

from typing import NamedTuple

import numpy as np

from heterodyne.core.parameters import FRACTION_NAMES
from heterodyne.core.symmetries import canonical, components_mirror, exchange_absorber, exchanged_start

#: separator of a per-q parameter name: ``f0@q0.005``
PER_Q_SEPARATOR = "@"


def per_q_name(name, folder):
    """Joint name of parameter ``name`` of q bin ``folder``: ``name@folder``."""
    return f"{name}{PER_Q_SEPARATOR}{folder}"


class JointLayout(NamedTuple):
    """folders (n_q,) bin names; local_names the free parameters of each bin (canonical order);
    shared_names / fraction_names the shared and per-q ones among them; names (n_joint,) the joint
    vector's names; index list of n_q int arrays (n_local,), bin b's free parameters in x."""

    folders: list
    local_names: list
    shared_names: list
    fraction_names: list
    names: list
    index: list

    def local(self, x, b):
        """Bin b's free-parameter vector (n_local,) from the joint vector ``x``."""
        return np.asarray(x)[self.index[b]]

    def joint_from_local(self, locals_):
        """The joint vector from each bin's local vector (list of (n_local,)); a shared entry takes
        the value of the last bin (callers check consistency where it matters)."""
        x = np.zeros(len(self.names))
        for b, values in enumerate(locals_):
            x[self.index[b]] = values
        return x

    def per_bin_expanded(self, b, n_scaling_per_bin):
        """Positions (n_local + 2 n_s_b,) of bin b's expanded parameters [x_local, contrast_b,
        offset_b] in the joint expanded vector [x (n_joint), then per bin contrast (n_s), offset
        (n_s)]; ``n_scaling_per_bin`` lists n_s of every bin."""
        start = len(self.names) + 2 * int(sum(n_scaling_per_bin[:b]))
        scaling = start + np.arange(2 * n_scaling_per_bin[b])
        return np.concatenate([self.index[b], scaling]).astype(int)


def joint_layout(settings, folders):
    """:class:`JointLayout` of the free parameters of ``settings``
    (:class:`~heterodyne.fit.settings.FitSettings`) over the q bins ``folders``."""
    local = settings.free_names
    shared = [name for name in local if name not in FRACTION_NAMES]
    fractions = [name for name in local if name in FRACTION_NAMES]
    names = shared + [per_q_name(name, folder) for folder in folders for name in fractions]
    position = {name: k for k, name in enumerate(names)}
    index = [
        np.array([position[name if name in shared else per_q_name(name, folder)] for name in local], dtype=int)
        for folder in folders
    ]
    return JointLayout(
        folders=list(folders),
        local_names=local,
        shared_names=shared,
        fraction_names=fractions,
        names=names,
        index=index,
    )


def _consistent(layout, x, locals_):
    return all(np.array_equal(layout.local(x, b), values) for b, values in enumerate(locals_))


def bin_theta(x, layout, settings, b):
    """Bin b's 14-vector: ``settings.initial`` with the free entries from the joint ``x``."""
    theta = settings.initial.copy()
    theta[np.asarray(settings.free)] = layout.local(x, b)
    return theta


def canonical_joint(x, layout, settings, t_means):
    """The equivalent joint vector under the model's exact symmetries applied to every bin
    (:func:`heterodyne.core.symmetries.canonical`; ``t_means`` [s] each bin's mean time): v0 >= 0
    and, where reference and sample can be exchanged, J_ref <= J_sample. A flip is made only when
    every bin flips alike (the shared entries stay equal across bins), the fixed parameters keep
    their values and every result lies within the bounds; otherwise ``x`` is returned."""
    free = np.asarray(settings.free)
    x = np.asarray(x, dtype=np.float64)
    flipped = []
    for b, t_mean in enumerate(t_means):
        theta = bin_theta(x, layout, settings, b)
        absorber = exchange_absorber(layout.local_names, theta)
        new = canonical(theta, t_mean, absorber, settings.lower, settings.upper)
        inside = np.all((settings.lower <= new) & (new <= settings.upper))
        if not inside or not np.array_equal(np.delete(new, free), np.delete(theta, free)):
            return x
        flipped.append(new[free])
    candidate = layout.joint_from_local(flipped)
    return candidate if _consistent(layout, candidate, flipped) else x


def exchange_restart_joint(x, layout, settings, grids):
    """Joint start in the basin of the exchanged components (per bin
    :func:`heterodyne.core.symmetries.exchanged_start`, x_s matched at the first and third quarter
    of that bin's time grid in ``grids`` [s]), clipped to the bounds; None where that is no move
    of this fit (f0 or f1 not free, the components not free alike, or no representation at a
    bin)."""
    if not ({"f0", "f1"} <= set(layout.local_names) and components_mirror(layout.local_names, settings.initial)):
        return None
    free = np.asarray(settings.free)
    starts = []
    for b, t in enumerate(grids):
        n = len(t)
        start = exchanged_start(bin_theta(x, layout, settings, b), float(t[n // 4]), float(t[3 * n // 4]))
        if start is None:
            return None
        starts.append(np.clip(start[free], settings.lower[free], settings.upper[free]))
    candidate = layout.joint_from_local(starts)
    return candidate if _consistent(layout, candidate, starts) else None
