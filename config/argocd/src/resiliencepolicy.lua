if hs.status == "Healthy" and obj.status ~= nil and obj.status.composedWith ~= nil and obj.status.composedWith ~= "" then
  hs.message = "Composed with TrafficSplit " .. obj.status.composedWith .. ". " .. hs.message
end
return hs
