"""The lab: training and evaluating models. The product never imports it; it imports the engine."""
