"""The cylc-access Hub service: who may view whose Cylc UI, enforced through hub shares."""
