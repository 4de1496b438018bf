"""PagerDuty: who is on call, from its REST API (``oncall``), for the on-call questions."""
