-- View customer_ltv: customer lifetime value by acquisition (first-touch) channel, for B2B
-- accounts and B2C persons separately. Built on the customers view (see there for who is a
-- customer, what counts as revenue and how the first touch is found).
--   segment                  'b2b' (accounts: won deals and renewals) or 'b2c' (persons:
--                            purchases, self-serve plans)
--   first_touch_channel      channel of the customer's earliest touch ('(none)' if unknown)
--   customers                customers acquired through the channel
--   revenue_conversions      their revenue conversions, all of them (repeat orders, renewals)
--   lifetime_value           total value of those conversions
--   avg_lifetime_value       lifetime_value / customers
--   median_lifetime_value    median of the customers' lifetime values
--   avg_revenue_conversions  revenue_conversions / customers (repeat purchase rate)
--   avg_days_to_first_revenue  average days from the first touch to the first revenue
--                            conversion (customers with a first touch only)
--   currencies               distinct currencies summed (not converted)
SELECT
    segment,
    first_touch_channel,
    count(*) AS customers,
    sum(revenue_conversions) AS revenue_conversions,
    fsum(lifetime_value) AS lifetime_value,
    fsum(lifetime_value) / count(*) AS avg_lifetime_value,
    median(lifetime_value) AS median_lifetime_value,
    sum(revenue_conversions) / count(*) AS avg_revenue_conversions,
    avg(epoch(first_revenue_time - first_touch_time) / 86400.0) AS avg_days_to_first_revenue,
    nullif(array_to_string(list_sort(list_distinct(flatten(
        list(string_split(currencies, ',')) FILTER (WHERE currencies IS NOT NULL)))), ','), '')
        AS currencies
FROM customers
GROUP BY segment, first_touch_channel
ORDER BY segment, lifetime_value DESC, first_touch_channel
